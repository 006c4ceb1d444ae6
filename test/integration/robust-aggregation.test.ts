/**
 * Federated mode (--sync local-delta) with one Byzantine worker of five:
 * a real worker whose gradient sums and local δ are scaled by −10 or
 * replaced by noise (test/helpers/byzantine.ts). With --aggregate mean
 * its numbers move the adapter farther from the fault-free run's than the
 * whole training moved it; median and trimmed-mean keep it at less than
 * half of mean's distance. (SGD, so that a distance is a gradient's error:
 * Adam's normalised steps would make every small coordinate count.)
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { readSafetensors } from '../../services/io/safetensors.ts';
import { byzantine, noise, scaledBy, type Tamper } from '../helpers/byzantine.ts';
import { runCluster, scratch } from './cluster-harness.ts';

const tmp = scratch();
after(() => tmp.done());
let runs = 0;
const out = () => `${tmp.dir}/run-${++runs}`;

// 20 training images in 10 chunks: every one of the 5 workers gets some each step
const ARGS = ['--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--shots', '2', '--iters', '3', '--batch-size', '20', '--chunk-size', '2', '--sync', 'local-delta', '--optimizer', 'sgd', '--lr', '1'];

/** Every factor of an adapter, in tensor-name order. */
const vectorOf = (adapter: Buffer): Float64Array => {
  const tensors = [...readSafetensors(adapter, 'adapter_model.safetensors')].sort(([a], [b]) => (a < b ? -1 : 1));
  return Float64Array.from(tensors.flatMap(([, t]) => [...t.data]));
};
const distance = (a: Float64Array, b: Float64Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));

async function train(rule: string, tamper: Tamper | null): Promise<Float64Array> {
  const run = await runCluster([...ARGS, '--aggregate', rule], out(), { workers: 5, prepare: (i, honest) => (tamper && i === 4 ? byzantine(honest, tamper) : honest) });
  return vectorOf(run.adapter);
}

test('one Byzantine worker of five: median and trimmed-mean stay near the fault-free adapter, mean does not', async () => {
  const faultFree = await train('mean', null);
  const initial = vectorOf((await runCluster([...ARGS, '--iters', '0'], out(), { workers: 1 })).adapter);
  const trained = distance(faultFree, initial);
  for (const [name, tamper] of [['scaled by −10', scaledBy(-10)], ['noise', noise(1)]] as const) {
    const off = {
      mean: distance(await train('mean', tamper), faultFree),
      median: distance(await train('median', tamper), faultFree),
      trimmed: distance(await train('trimmed-mean', tamper), faultFree),
    };
    const detail = `${name}: distance from the fault-free adapter ${JSON.stringify(off)}, training moved it ${trained}`;
    assert.ok(off.mean > trained, detail);
    assert.ok(off.median < 0.5 * off.mean && off.trimmed < 0.5 * off.mean, detail);
  }
});

test('--aggregate other than mean needs --sync local-delta, and enough chunks for the trim', async () => {
  const base = ARGS.filter((a, i) => a !== 'local-delta' && ARGS[i - 1] !== '--sync' && a !== '--sync');
  await assert.rejects(runCluster([...base, '--aggregate', 'median'], out(), { workers: 1 }), /--aggregate median needs --sync local-delta/);
  await assert.rejects(runCluster([...ARGS, '--aggregate', 'trimmed-mean', '--trim', '5'], out(), { workers: 1 }), /--trim 5 needs 11 workers' results/);
});
