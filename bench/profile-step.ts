/**
 * Where a training step's time goes, kernel by kernel: tf.profile around one
 * AdvCLIP-LoRA step (after a warm-up step) of `advclip bench step`'s
 * configuration, summed per kernel name and sorted by time.
 *
 *   node --import tsx bench/profile-step.ts --arch vit-b-32 --batch 32 --tau 2 --backend native [--top 25] [--json]
 *
 * Kernel times are wall times of each kernel call (wasm and native run
 * synchronously), so their total against the step's wall time also tells how
 * much of the step is outside the kernels (JS, autograd bookkeeping).
 * --by-shape splits each kernel by its input shapes (which products are slow).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { ClipModel } from '../services/core/clip.ts';
import { localExecutor } from '../services/core/local-executor.ts';
import { initLora } from '../services/core/lora.ts';
import { ArchNames, archConfig, randomClipWeights } from '../services/core/presets.ts';
import { ShardComputer } from '../services/core/shard.ts';
import { initTrainState, trainStep } from '../services/core/trainer.ts';
import { benchInputs, benchSpec } from '../services/run/synthetic-run.ts';
import { explicitTransposeFor, startBackend } from '../services/run/backend.ts';
import { createLogger } from '../services/protocol/log.ts';

const HELP = `usage: node --import tsx bench/profile-step.ts [--arch ${ArchNames.join('|')}] [--batch 32] [--tau 2] [--prompts 10] [--chunk-size 8] [--backend NAME] [--top 25] [--by-shape] [--json]`;

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'vit-b-32' },
    batch: { type: 'string', default: '32' },
    tau: { type: 'string', default: '2' },
    prompts: { type: 'string', default: '10' },
    'chunk-size': { type: 'string', default: '8' },
    backend: { type: 'string' },
    top: { type: 'string', default: '25' },
    'by-shape': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
if (!(ArchNames as readonly string[]).includes(values.arch!)) {
  console.error(`--arch must be one of ${ArchNames.join(', ')}\n${HELP}`);
  process.exit(2);
}

interface KernelRow {
  readonly name: string;
  calls: number;
  ms: number;
  /** GFLOP/s of a BatchMatMul row split by shape */
  gflops?: number;
}

/** Multiply-adds ×2 of a BatchMatMul call (any transpose: the output shape and the shared dim give it). */
function matMulFlops(inputs: readonly number[][], output: readonly number[]): number {
  const a = inputs[0];
  const outCount = output.reduce((p, d) => p * d, 1);
  const [rows, cols] = a.slice(-2);
  // a is [m, k], or [k, m] when transposed: k is its columns when its rows match the output's (right either way if k = m), else its rows
  const k = rows === output[output.length - 2] ? cols : rows;
  return 2 * outCount * k;
}

const log = createLogger({ quiet: true });
const backend = await startBackend(values.backend, log);
const config = archConfig(values.arch!);
const spec = benchSpec({ tau: Number(values.tau), steps: 1, batch: Number(values.batch), chunkSize: Number(values['chunk-size']) });
const model = ClipModel.fromWeights(config, randomClipWeights(config, 1), { explicitTranspose: explicitTransposeFor(backend) });
const { prompts, source } = benchInputs(config, spec.batchSize, Number(values.prompts));
const executor = localExecutor(new ShardComputer(model, spec, prompts, source));
const state = initTrainState(spec, initLora(config, spec.lora, spec.seed));

await trainStep(state, spec, spec.batchSize, executor.execute); // warm-up: kernels compiled, weights packed
const t0 = performance.now();
const profile = await tf.profile(async () => {
  await trainStep(state, spec, spec.batchSize, executor.execute);
  return [];
});
const stepMs = performance.now() - t0;
executor.dispose();
model.dispose();

const byName = new Map<string, KernelRow>();
const flopsOf = new Map<string, number>();
for (const k of profile.kernels) {
  const key = values['by-shape'] ? `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join('·')}` : k.name;
  const row = byName.get(key) ?? { name: key, calls: 0, ms: 0 };
  row.calls++;
  row.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  byName.set(key, row);
  if (values['by-shape'] && k.name === 'BatchMatMul') flopsOf.set(key, (flopsOf.get(key) ?? 0) + matMulFlops(k.inputShapes, k.outputShapes[0]));
}
for (const [key, flops] of flopsOf) {
  const row = byName.get(key)!;
  row.gflops = flops / (row.ms * 1e6);
}
const rows = [...byName.values()].sort((a, b) => b.ms - a.ms);
const kernelMs = rows.reduce((s, r) => s + r.ms, 0);
const top = rows.slice(0, Number(values.top));

if (values.json) {
  console.log(JSON.stringify({ arch: values.arch, backend: backend.name, step_ms: stepMs, kernel_ms: kernelMs, kernels: rows }));
} else {
  console.log(`${values.arch} batch ${spec.batchSize} τ ${spec.tau} on ${backend.name}: step ${(stepMs / 1000).toFixed(2)} s (profiled), kernels ${(kernelMs / 1000).toFixed(2)} s = ${((100 * kernelMs) / stepMs).toFixed(0)} % of it`);
  const width = Math.max(28, ...top.map((r) => r.name.length + 2));
  console.log('kernel'.padEnd(width) + 'calls'.padStart(8) + 'seconds'.padStart(10) + '  share');
  for (const r of top) {
    const rate = r.gflops === undefined ? '' : `  ${r.gflops.toFixed(0)} GFLOP/s`;
    console.log(r.name.padEnd(width) + String(r.calls).padStart(8) + (r.ms / 1000).toFixed(3).padStart(10) + `  ${((100 * r.ms) / stepMs).toFixed(1)} %` + rate);
  }
}
