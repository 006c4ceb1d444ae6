/**
 * Kernel peak: tfjs matMul GFLOP/s on each backend that loads here (wasm:
 * XNNPACK, one thread in Node; native: oneDNN's sgemm from the addon, or
 * OpenBLAS' where it was built without oneDNN, at 1 and 2 threads), against
 * this machine's sgemm peak measured in the same run with NumPy's OpenBLAS.
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on these machines as a safety
 * measure) are unset for the NumPy child only, so it runs the core OpenBLAS
 * picks for this CPU; the tfjs children keep the machine's environment, as a
 * user's run would (it pins an OpenBLAS build of the addon to Haswell; oneDNN
 * does not read it).
 */
import { loadNativeAddon } from '../services/core/native-kernels.ts';
import { failureOf, jsonLines, runChild } from './child.ts';
import { ratioOf, unavailable, type Figure } from './figure.ts';
import type { BenchContext, Section, SectionOutcome } from './section.ts';

interface SgemmPeak {
  readonly numpy: string;
  readonly library: string | null;
  readonly openblas_config: string | null;
  readonly core: string | null;
  readonly results: readonly { threads: number; n?: number; gflops?: number; error?: string }[];
}

interface MatmulRow {
  readonly backend: string;
  readonly threads: number | null;
  readonly n: number;
  readonly gflops: number;
}

const SAFETY_ENV = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;
const threadsText = (t: number) => `${t} thread${t > 1 ? 's' : ''}`;

async function numpyPeak(ctx: BenchContext, sizes: readonly number[]): Promise<SgemmPeak | { error: string }> {
  const env = { ...process.env };
  for (const k of SAFETY_ENV) delete env[k];
  const budget = ctx.quick ? ['--rounds', '3', '--seconds', '0.2'] : ['--rounds', '5', '--seconds', '0.4'];
  const args = ['bench/sgemm_peak.py', '--sizes', sizes.join(','), '--threads', '1,2', ...budget];
  ctx.log(`$ env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 ${args.join(' ')}`);
  const run = await runChild('python3', args, { cwd: ctx.repo, env, timeoutMs: 120_000, label: 'numpy', log: ctx.log });
  const json = jsonLines(run.stdout)[0] as unknown as SgemmPeak | undefined;
  if (run.code !== 0 || !json) {
    const missing = /No module named 'numpy'|ENOENT|not found/.test(run.stderrTail);
    return { error: missing ? 'python3 with numpy not found (pip install numpy, or apt-get install python3-numpy)' : failureOf(run) };
  }
  return json;
}

async function tfjsMatmul(ctx: BenchContext, backend: 'wasm' | 'native', threads: number | null, sizes: readonly number[]): Promise<MatmulRow[] | { error: string }> {
  const budget = ctx.quick ? ['--rounds', '3', '--seconds', '0.2'] : ['--rounds', '5', '--seconds', '0.4'];
  const args = ['--import', 'tsx', 'bench/matmul-child.ts', '--backend', backend, '--sizes', sizes.join(','), ...(threads ? ['--threads', String(threads)] : []), ...budget];
  ctx.log(`$ node ${args.join(' ')}`);
  const run = await runChild(process.execPath, args, { cwd: ctx.repo, timeoutMs: 300_000, label: `matmul ${backend}`, log: ctx.log });
  const rows = jsonLines(run.stdout) as unknown as MatmulRow[];
  return run.code === 0 && rows.length ? rows : { error: failureOf(run) };
}

function nativeAddon(): { info: string; core: string } | { error: string } {
  try {
    const info = loadNativeAddon().info();
    return { info: info.blas, core: info.core };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

async function run(ctx: BenchContext): Promise<SectionOutcome> {
  const sizes = ctx.quick ? [1024] : [1024, 2048];
  const figures: Figure[] = [];
  const peak = await numpyPeak(ctx, ctx.quick ? [1024, 2048] : [1024, 2048, 4096]);
  const numpyAt = (threads: number, n: number) => ('results' in peak ? peak.results.find((r) => r.threads === threads && r.n === n)?.gflops : undefined);
  if ('error' in peak) {
    for (const t of [1, 2]) figures.push(unavailable(`kernel.numpy.t${t}.peak`, `NumPy/OpenBLAS sgemm peak, ${threadsText(t)}`, 'GFLOP/s', peak.error));
  } else {
    const kernel = `OpenBLAS core ${peak.core ?? '?'} (${peak.library?.split('/').at(-1) ?? '?'}, numpy ${peak.numpy}; OPENBLAS_CORETYPE/L2_SIZE unset)`;
    const best: Record<number, number> = {};
    for (const t of [1, 2]) {
      const rows = peak.results.filter((r) => r.threads === t && r.gflops !== undefined);
      best[t] = rows.length ? Math.max(...rows.map((r) => r.gflops!)) : NaN;
      for (const r of rows) figures.push({ id: `kernel.numpy.t${t}.n${r.n}`, label: `NumPy sgemm ${r.n}², ${threadsText(t)}`, value: r.gflops!, unit: 'GFLOP/s', note: t === 1 && r === rows[0] ? kernel : undefined });
    }
    // a 2-core peak below the 1-core one is the shared machine, not the hardware: the 1-core figure bounds it from below
    const peak2 = Number.isFinite(best[2]) && !(best[2] < best[1]) ? best[2] : best[1];
    ctx.shared.sgemmPeak = { 1: best[1], 2: peak2 };
    figures.push({ id: 'kernel.numpy.t1.peak', label: 'sgemm peak, 1 core (best size)', value: best[1], unit: 'GFLOP/s' });
    figures.push({
      id: 'kernel.numpy.t2.peak',
      label: 'sgemm peak, 2 cores (best size)',
      value: peak2,
      unit: 'GFLOP/s',
      ratio: { value: ratioOf(best[2], best[1]), of: '1 core' },
      note: best[2] < best[1] ? `2 threads measured ${best[2]} GFLOP/s, less than 1 thread (the machine is busy): the 1-thread figure stands in, so fractions of it are upper bounds` : undefined,
    });
  }

  const addon = nativeAddon();
  const runs: { backend: 'wasm' | 'native'; threads: number | null; kernel: string }[] = [{ backend: 'wasm', threads: null, kernel: 'XNNPACK via wasm, 1 thread' }];
  if ('error' in addon) figures.push(unavailable('kernel.native', 'tfjs matMul, native (oneDNN or OpenBLAS sgemm)', 'GFLOP/s', `native backend not available: ${addon.error}`));
  else {
    // the tfjs children keep the machine's environment: an OpenBLAS build takes its core from OPENBLAS_CORETYPE, not the CPU
    const openblas = addon.info.startsWith('OpenBLAS');
    const forced = openblas && process.env.OPENBLAS_CORETYPE ? ` (OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE})` : '';
    const library = openblas ? 'OpenBLAS' : addon.info;
    for (const t of ctx.quick ? [2] : [1, 2]) runs.push({ backend: 'native', threads: t, kernel: `${library} sgemm via native, kernel ${addon.core}${forced}, ${threadsText(t)}` });
  }
  const details: Record<string, unknown> = { numpy: peak, native_addon: addon, tfjs: {} };
  for (const r of runs) {
    const rows = await tfjsMatmul(ctx, r.backend, r.threads, sizes);
    const key = `${r.backend}${r.threads ? `.t${r.threads}` : ''}`;
    (details.tfjs as Record<string, unknown>)[key] = rows;
    if ('error' in rows) {
      figures.push(unavailable(`kernel.${key}`, `tfjs matMul, ${r.kernel}`, 'GFLOP/s', rows.error));
      continue;
    }
    const t = r.threads ?? 1;
    for (const row of rows) {
      const np = numpyAt(t, row.n);
      figures.push({ id: `kernel.${key}.n${row.n}`, label: `tfjs matMul ${row.n}², ${r.kernel}`, value: row.gflops, unit: 'GFLOP/s', ratio: { value: ratioOf(row.gflops, np), of: `NumPy ${row.n}², ${threadsText(t)}` } });
    }
  }
  return { figures, details };
}

export const kernelSection: Section = { name: 'kernel', title: 'Kernel peak: tfjs matMul vs NumPy/OpenBLAS sgemm', run };
