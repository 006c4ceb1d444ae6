/**
 * An evaluation during training as one EVAL round: the evaluation subset
 * (positions 0..n-1) cut into chunks of the run's chunk size, computed by
 * any executor at the current adapter version, and the chunks' correct
 * counts and loss sums added in chunk order. So the accuracy is the same in
 * one process and on N workers.
 */
import type { AttackName } from './evaluate.ts';
import { chunksOf } from './sampling.ts';
import type { Executor, TrainState } from './trainer.ts';
import { AdvclipError } from './errors.ts';

export interface EvaluationReport {
  /** steps done when evaluated */
  readonly step: number;
  readonly attack: AttackName;
  readonly epsilon: number;
  readonly n: number;
  readonly correct: number;
  readonly accuracy: number;
  /** mean cross-entropy at the attacked input */
  readonly loss: number;
}

export interface EvaluationRound {
  readonly attack: AttackName;
  readonly epsilon: number;
  /** images in the evaluation subset */
  readonly n: number;
  readonly chunkSize: number;
}

export async function evaluationRound(state: TrainState, e: EvaluationRound, execute: Executor): Promise<EvaluationReport> {
  const chunks = chunksOf([...Array(e.n).keys()], e.chunkSize);
  const res = await execute({ step: state.step, round: 0, kind: 'eval', chunks, delta: null, textGrad: null }, state.lora, state.version);
  const ordered = [...res.chunks].sort((a, b) => a.index - b.index);
  if (ordered.length !== chunks.length) throw new AdvclipError('INTERNAL', `evaluation at step ${state.step}: ${ordered.length} of ${chunks.length} chunks came back`);
  let correct = 0;
  let lossSum = 0;
  for (const c of ordered) {
    correct += c.correct ?? 0;
    lossSum += c.advLossSum;
  }
  return { step: state.step, attack: e.attack, epsilon: e.epsilon, n: e.n, correct, accuracy: correct / e.n, loss: lossSum / e.n };
}
