/**
 * The states kept for a rollback: back at the start of the step asked for
 * (or of the oldest kept, with the steps before it counted as exposed), the
 * adapters, moments, δ and η_δ as they were, under a newer version number.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TrainState } from '../../../services/core/trainer.ts';
import { StateHistory } from '../../../services/run/state-history.ts';

const stateAt = (step: number): TrainState => ({
  step,
  version: 2 * step,
  lora: { step } as unknown as TrainState['lora'],
  optimizer: { name: 'adamw', m: [Float32Array.of(step)], v: [Float32Array.of(-step)] },
  delta: Float32Array.of(step / 10),
  deltaEpoch: step >> 2,
  calibratedLrDelta: step ? 0.5 : null,
});

/** Steps 0..n-1 taken on one state object, as the step loop does, each kept before it is taken. */
function taken(history: StateHistory, n: number): TrainState {
  const state = stateAt(0);
  for (let s = 0; s < n; s++) {
    history.keep(state);
    const next = stateAt(s + 1);
    Object.assign(state, { ...next, optimizer: state.optimizer });
    state.optimizer.m[0].set(next.optimizer.m[0]);
    state.optimizer.v[0].set(next.optimizer.v[0]);
  }
  return state;
}

test('rolled back to the start of a kept step: every part of the state as it was, and a newer version', () => {
  const history = new StateHistory(4);
  const state = taken(history, 6);
  assert.deepEqual(history.rollBack(state, 3), { step: 3, exposed: 0 });
  const { version, ...rest } = state;
  const { version: _, ...then } = stateAt(3);
  assert.deepEqual(rest, then);
  assert.equal(version, 2 * 6 + 1, 'newer than any version the run made');
});

test('older than the window: back at the oldest kept, the steps before it exposed; nothing kept: null', () => {
  const history = new StateHistory(2);
  const state = taken(history, 6);
  assert.deepEqual(history.rollBack(state, 1), { step: 4, exposed: 3 });
  assert.equal(state.step, 4);
  assert.equal(new StateHistory(0).rollBack(taken(new StateHistory(0), 3), 1), null);
});

test('after a rollback the steps taken again replace the states kept for them', () => {
  const history = new StateHistory(8);
  const state = taken(history, 5);
  history.rollBack(state, 2);
  history.keep(state);
  assert.deepEqual(history.rollBack(state, 0), { step: 0, exposed: 0 });
  assert.equal(state.step, 0);
});
