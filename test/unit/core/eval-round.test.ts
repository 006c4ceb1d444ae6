/**
 * An EVAL round on a tiny model: its counts do not depend on how the subset
 * is cut into chunks, its loss sums add up to the batched evaluation's, it
 * leaves no tensors behind, and a shard computer of a run that does not
 * evaluate refuses it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel } from '../../../services/core/clip.ts';
import { evaluationRound } from '../../../services/core/eval-round.ts';
import { attackSpec, type AttackSpec } from '../../../services/core/evaluate.ts';
import { localExecutor } from '../../../services/core/local-executor.ts';
import { initLora } from '../../../services/core/lora.ts';
import { ShardComputer } from '../../../services/core/shard.ts';
import { initTrainState } from '../../../services/core/trainer.ts';
import { colourTask, tinyConfig, tinySpec, tinyWeights } from './tiny-task.ts';

let model: ClipModel;
before(async () => {
  await initBackend('wasm');
  model = ClipModel.fromWeights(tinyConfig, tinyWeights(2), { explicitTranspose: true });
});
after(() => model.dispose());

const task = colourTask(11);
const spec = tinySpec();
const pgd: AttackSpec = attackSpec({ attack: 'pgd', epsilon: 8 / 255, steps: 3, randomStart: true, restarts: 1, seed: 4 });

async function evaluateWith(chunkSize: number, attack: AttackSpec) {
  const ex = localExecutor(new ShardComputer(model, spec, task.prompts, task.source, { source: task.source, attack }));
  try {
    const state = initTrainState(spec, initLora(tinyConfig, spec.lora, spec.seed));
    return await evaluationRound(state, { attack: attack.attack, epsilon: attack.epsilon, n: task.labels.length, chunkSize }, ex.execute);
  } finally {
    ex.dispose();
  }
}

test('the correct count does not depend on the chunk size; the loss is the same to float tolerance', async () => {
  for (const attack of [{ ...pgd, attack: 'none' } as const, pgd]) {
    const [a, b, c] = [await evaluateWith(2, attack), await evaluateWith(3, attack), await evaluateWith(11, attack)];
    assert.equal(a.n, 11);
    assert.equal(a.correct, b.correct, attack.attack);
    assert.equal(a.correct, c.correct, attack.attack);
    assert.equal(a.accuracy, a.correct / 11);
    assert.ok(Math.abs(a.loss - c.loss) < 1e-5, `${attack.attack}: ${a.loss} vs ${c.loss}`);
    assert.ok(a.correct >= 0 && a.correct <= 11);
  }
});

test('PGD does not raise the accuracy over clean, and raises the loss', async () => {
  const clean = await evaluateWith(4, { ...pgd, attack: 'none' });
  const robust = await evaluateWith(4, pgd);
  assert.ok(robust.correct <= clean.correct, `${robust.correct} > ${clean.correct}`);
  assert.ok(robust.loss > clean.loss, `${robust.loss} ≤ ${clean.loss}`);
});

test('EVAL rounds leave no tensors behind', async () => {
  await evaluateWith(4, pgd);
  const before = tf.memory().numTensors;
  await evaluateWith(4, pgd);
  await evaluateWith(4, pgd);
  assert.equal(tf.memory().numTensors, before);
});

test('a shard computer of a run that does not evaluate refuses an EVAL round, saying so', async () => {
  const ex = localExecutor(new ShardComputer(model, spec, task.prompts, task.source));
  try {
    const state = initTrainState(spec, initLora(tinyConfig, spec.lora, spec.seed));
    await assert.rejects(evaluationRound(state, { attack: 'none', epsilon: 0, n: 4, chunkSize: 2 }, ex.execute), /an EVAL round came, but this run does not evaluate/);
  } finally {
    ex.dispose();
  }
});
