/**
 * The kernel section's tfjs measuring process: GFLOP/s of a plain
 * tf.matMul(a, b) (n×n float32, data read back) on one backend — the
 * product the NumPy sgemm peak is compared with. Best of `rounds` rounds of
 * at least `seconds` each (best-of: the machine is shared). One JSON line per
 * size. (native/bench-matmul.ts also measures the transposed products.)
 *
 *   node --import tsx bench/matmul-child.ts --backend native --threads 2 --sizes 1024,2048 [--rounds 3] [--seconds 0.3]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../services/core/backend.ts';

const { values } = parseArgs({
  options: { backend: { type: 'string', default: 'wasm' }, threads: { type: 'string' }, sizes: { type: 'string', default: '1024' }, rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '0.3' } },
});
const threads = values.threads ? Number(values.threads) : undefined;
const backend = await initBackend(parseBackendName(values.backend!), { nativeThreads: threads });

for (const n of values.sizes!.split(',').map(Number)) {
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const once = () => tf.tidy(() => void tf.matMul(a, b).dataSync());
  once();
  let best = Infinity;
  for (let round = 0; round < Number(values.rounds); round++) {
    let reps = 0;
    const t0 = performance.now();
    while (reps < 1 || performance.now() - t0 < 1000 * Number(values.seconds)) {
      once();
      reps++;
    }
    best = Math.min(best, (performance.now() - t0) / 1000 / reps);
  }
  tf.dispose([a, b]);
  process.stdout.write(JSON.stringify({ backend: backend.name, threads: threads ?? null, n, gflops: Number(((2 * n ** 3) / best / 1e9).toFixed(1)) }) + '\n');
}
