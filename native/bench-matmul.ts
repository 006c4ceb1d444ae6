/**
 * tf.matMul GFLOP/s on one backend at square sizes, plain and with transpose
 * flags — the kernel-peak figure for the native backend against wasm:
 *
 *   node --import tsx native/bench-matmul.ts --backend native --threads 2 [--sizes 512,1024,2048]
 *
 * Prints one JSON line per size: best of 3 rounds of ≥ 0.5 s each.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../services/core/backend.ts';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'native' }, threads: { type: 'string' }, sizes: { type: 'string', default: '512,1024,2048' } } });
const backend = await initBackend(parseBackendName(values.backend!), { nativeThreads: values.threads ? Number(values.threads) : undefined });

function gflops(n: number, ta: boolean, tb: boolean): number {
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const once = () => tf.matMul(a, b, ta, tb).dispose();
  once();
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    let reps = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 500 || reps < 2) {
      once();
      reps++;
    }
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

for (const n of values.sizes!.split(',').map(Number)) {
  const row = { backend: backend.name, threads: values.threads ? Number(values.threads) : null, n, nn: gflops(n, false, false), nt: gflops(n, false, true), tn: gflops(n, true, false) };
  console.log(JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(1)) : v]))));
}
