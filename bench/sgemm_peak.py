"""This machine's float32 GEMM peak through NumPy's OpenBLAS, at 1 and 2 threads (bench/kernel.ts runs it).

    python3 bench/sgemm_peak.py --sizes 1024,2048 --threads 1,2 [--rounds 3] [--seconds 0.5]

Prints one JSON object: which OpenBLAS library and core kernel it ran (asked of the loaded
library itself: numpy's build config names the build target, not the core picked at run time)
and the best GFLOP/s per (threads, n). The thread count is set through the library between
measurements, so both counts run in this one process.
"""
import argparse, ctypes, json, time

import numpy as np


def loaded_openblas():
    """Path of the OpenBLAS shared library numpy loaded (from this process' memory map)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    return sorted(paths)[0] if paths else None


def symbol(lib, *names):
    for name in names:
        if hasattr(lib, name):
            return getattr(lib, name)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()

    path = loaded_openblas()
    lib = ctypes.CDLL(path) if path else None
    corename = symbol(lib, "openblas_get_corename", "openblas_get_corename64_", "scipy_openblas_get_corename64_") if lib else None
    config = symbol(lib, "openblas_get_config", "openblas_get_config64_", "scipy_openblas_get_config64_") if lib else None
    set_threads = symbol(lib, "openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_") if lib else None
    for f in (corename, config):
        if f is not None:
            f.restype = ctypes.c_char_p

    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        if set_threads is None:
            results.append({"threads": threads, "error": "cannot set OpenBLAS threads in this numpy"})
            continue
        set_threads(threads)
        for n in [int(s) for s in args.sizes.split(",")]:
            rng = np.random.default_rng(n)
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            c = a @ b  # warm-up: thread start-up, page faults
            best = float("inf")
            for _ in range(args.rounds):  # best of: the machine is shared
                reps, t0 = 0, time.perf_counter()
                while reps < 2 or time.perf_counter() - t0 < args.seconds:
                    np.matmul(a, b, out=c)
                    reps += 1
                best = min(best, (time.perf_counter() - t0) / reps)
            results.append({"threads": threads, "n": n, "gflops": round(2 * n**3 / best / 1e9, 1)})

    print(json.dumps({
        "numpy": np.__version__,
        "library": path,
        "openblas_config": config().decode() if config else None,
        "core": corename().decode() if corename else None,
        "results": results,
    }))


if __name__ == "__main__":
    main()
