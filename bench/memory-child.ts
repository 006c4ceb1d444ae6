/**
 * The memory section's measuring process: trains the tiny architecture in
 * this process (random weights, the synthetic samples of `bench step`) and
 * prints one JSON line per sample — after the first step and every
 * `--every` steps — with the process' RSS and tfjs' live tensors.
 *
 *   node --expose-gc --import tsx bench/memory-child.ts --steps 1000 --every 100
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { benchInputs, benchSpec } from '../services/run/synthetic-run.ts';
import { explicitTransposeFor } from '../services/run/backend.ts';
import { initBackend, parseBackendName } from '../services/core/backend.ts';
import { ClipModel } from '../services/core/clip.ts';
import { localExecutor } from '../services/core/local-executor.ts';
import { initLora } from '../services/core/lora.ts';
import { archConfig, randomClipWeights } from '../services/core/presets.ts';
import { ShardComputer } from '../services/core/shard.ts';
import { initTrainState, trainStep } from '../services/core/trainer.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '1000' }, every: { type: 'string', default: '100' } } });
const steps = Number(values.steps);
const every = Number(values.every);
const backend = await initBackend(parseBackendName(process.env.ADVCLIP_BACKEND ?? 'auto'));
const config = archConfig('tiny');
// 2 chunks per minibatch and 2 text groups per step: the sums and caches a real run goes through
const spec = benchSpec({ tau: 2, steps: steps - 1, batch: 4, chunkSize: 2 });
const model = ClipModel.fromWeights(config, randomClipWeights(config, 1), { explicitTranspose: explicitTransposeFor(backend) });
const { prompts, source } = benchInputs(config, spec.batchSize, 5);
const executor = localExecutor(new ShardComputer(model, spec, prompts, source));
const state = initTrainState(spec, initLora(config, spec.lora, spec.seed));

/** the wasm backends' linear memory (it grows, never shrinks); 0 on others */
const wasmHeapBytes = () => (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length ?? 0;

const started = performance.now();
for (let step = 1; step <= steps; step++) {
  await trainStep(state, spec, spec.batchSize, executor.execute);
  if (step === 1 || step % every === 0) {
    // a full collection first (run with --expose-gc): the sample shows what is live, not when V8 last collected
    (globalThis as { gc?: () => void }).gc?.();
    const m = tf.memory();
    const p = process.memoryUsage();
    const mb = (bytes: number) => bytes / 2 ** 20;
    const sample = { step, rss_mb: mb(p.rss), heap_used_mb: mb(p.heapUsed), wasm_heap_mb: mb(wasmHeapBytes()), num_tensors: m.numTensors, num_bytes: m.numBytes, seconds: (performance.now() - started) / 1000, backend: backend.name };
    process.stdout.write(JSON.stringify(sample) + '\n');
  }
}
executor.dispose();
model.dispose();
