/**
 * Evaluation during training (--eval-every): `advclip train` and a 2-worker
 * cluster give the same accuracies, bit for bit (EVAL chunks are summed in
 * chunk order whoever computed them); the coordinator sets
 * advclip_accuracy{attack}, on its /metrics while the run goes on; train.json and the step JSON lines carry the
 * evaluations; the accuracy is what `advclip eval` measures on the same
 * class-balanced subset at the final adapter.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { initBackend } from '../../services/core/backend.ts';
import type { Coordinator } from '../../services/coordinator/coordinator.ts';
import { evaluate, evalSet } from '../../services/run/evaluate.ts';
import { balancedSubset } from '../../services/io/eval-subset.ts';
import { loadAdapter } from '../../services/io/peft.ts';
import { evaluationAttack, prepareData } from '../../services/run/prepare.ts';
import { parseRunSpec } from '../../services/run/spec.ts';
import { runCli } from '../helpers/cli.ts';
import { quiet, runCluster, scratch, TINY } from './cluster-harness.ts';

const tmp = scratch();
after(() => tmp.done());

// PGD at a small ε so that the counts are not all 0 on the tiny model; 3 steps, evaluated after steps 2 and 3
const EVAL = ['--eval-every', '2', '--eval-attack', 'pgd', '--eval-limit', '30', '--eval-epsilon', '0.25/255', '--eval-steps', '3'];
const trainJson = (dir: string) => JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8'));

test('advclip train and a 2-worker cluster with --eval-every give the same evaluations; the coordinator sets advclip_accuracy', async () => {
  const trainOut = join(tmp.dir, 'train');
  const train = await runCli(['train', ...TINY, ...EVAL, '--out', trainOut, '--json']);
  assert.equal(train.code, 0, train.stderr);
  const evaluations = trainJson(trainOut).evaluations;
  assert.deepEqual(
    evaluations.map((e: Record<string, unknown>) => [e.step, e.attack, e.epsilon, e.n]),
    [
      [2, 'pgd', 0.25 / 255, 30],
      [3, 'pgd', 0.25 / 255, 30],
    ],
  );
  for (const e of evaluations) assert.equal(e.accuracy, e.correct / e.n);
  // the step JSON lines carry the evaluation after the step that made it due, and only there
  const lines = train.stderr.split('\n').filter((l) => l.startsWith('{"event":"step"')).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.evaluation?.step ?? null), [null, 2, 3]);
  assert.deepEqual(lines[2].evaluation, evaluations[1]);

  let coordinator: Coordinator | null = null;
  const clusterOut = join(tmp.dir, 'cluster');
  // scraped over HTTP while the run goes on: at step 3's bookkeeping, the evaluation after step 2 is on /metrics
  let scraped = '';
  const run = await runCluster([...TINY, ...EVAL], clusterOut, {
    workers: 2,
    onListening: (c) => void (coordinator = c),
    onStep: async (_r, s, c) => {
      if (s.step === 3) scraped = await (await fetch(`http://127.0.0.1:${c.metricsPort}/metrics`)).text();
    },
  });
  const results = (list: Record<string, unknown>[]) => list.map(({ seconds, ...e }) => (assert.ok(typeof seconds === 'number' && seconds >= 0), e));
  assert.deepEqual(results(trainJson(clusterOut).evaluations), results(evaluations), 'the cluster’s evaluations differ from advclip train’s');
  assert.ok(run.workers.every((w) => w.tasksDone > 0));
  assert.equal(/^advclip_accuracy\{attack="pgd"[^}]*\} (\S+)$/m.exec(scraped)?.[1], String(evaluations[0].accuracy), `no advclip_accuracy{attack="pgd"} of the first evaluation on /metrics:\n${scraped.split('\n').filter((l) => l.includes('accuracy')).join('\n')}`);
  const gauge = await coordinator!.metricsRegistry.getSingleMetric('advclip_accuracy')!.get();
  assert.deepEqual(
    gauge.values.map((v) => [v.labels.attack, v.value]),
    [['pgd', evaluations[1].accuracy]],
  );
});

test('the accuracy of an EVAL round is what advclip eval measures on the same subset at the same adapter', async () => {
  const out = join(tmp.dir, 'clean');
  const args = [...TINY, '--eval-every', '3', '--eval-attack', 'fgsm', '--eval-limit', '25', '--eval-epsilon', '0.5/255'];
  const train = await runCli(['train', ...args, '--out', out, '--json']);
  assert.equal(train.code, 0, train.stderr);
  const [last] = trainJson(out).evaluations;
  const backend = await initBackend();
  const run = parseRunSpec({ model: 'test/fixtures/tiny-clip-f32', data: { root: 'data/shapes-colours' }, train: { seed: 1, epsilon: 1 / 255 }, evaluation: { every: 3, attack: 'fgsm', limit: 25, epsilon: 0.5 / 255 } });
  const data = await prepareData(run, backend, quiet);
  try {
    const images = balancedSubset(data.dataset.test, data.dataset.classNames.length, 25, 1);
    const lora = await loadAdapter(out, data.dir.config);
    const direct = await evaluate(data.model, data.prompts, await evalSet(images, data.dir), lora, evaluationAttack(run), 7, quiet);
    assert.equal(last.step, 3);
    assert.equal(direct.n, last.n);
    assert.equal(Math.round(direct.accuracy * direct.n), last.correct);
    assert.ok(Math.abs(direct.loss - last.loss) < 1e-4, `loss ${direct.loss} vs ${last.loss}`);
  } finally {
    data.model.dispose();
  }
});
