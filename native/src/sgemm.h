// One single-threaded row-major sgemm, C = op(A)·op(B), from whichever library
// the addon was built against: oneDNN where libdnnl-dev was found (its JIT
// picks the widest ISA the CPU has, AVX-512 here), else OpenBLAS (whose kernel
// OPENBLAS_CORETYPE may pin to an older one). The pool (pool.h) is the only
// source of parallelism, so every call here must stay on the calling thread.
#pragma once
#include <string>

namespace advclip {

/** Once, before the first sgemm: keeps the library's own threads out of it. */
void sgemmSetup();

void sgemm(bool transA, bool transB, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc);

/** The library, e.g. "oneDNN 2.6.3" or OpenBLAS' config string. */
std::string sgemmLibrary();
/** The kernel it runs on this CPU, e.g. "avx512_core" or "Haswell". */
std::string sgemmKernel();

}  // namespace advclip
