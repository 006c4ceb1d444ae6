/**
 * The states the last `window` steps started from, so that a run can go back
 * to one and take the steps again (RollBack: a worker caught sending wrong
 * numbers had contributed unchecked results since that step). Training is
 * deterministic, so the steps taken again give the bits of a run without the
 * worker. Results older than the window cannot be taken back: rollBack says
 * how many steps stay exposed.
 */
import { restoreState, snapshotOf, type StateSnapshot, type TrainState } from '../core/trainer.ts';

export interface RolledBack {
  /** the step the run is back at */
  readonly step: number;
  /** steps before it that the caught worker's results may still be in (older than the window) */
  readonly exposed: number;
}

export class StateHistory {
  readonly #window: number;
  readonly #kept: StateSnapshot[] = [];

  /** `window`: steps of states kept (0: none, no rollback) */
  constructor(window: number) {
    this.#window = window;
  }

  get window(): number {
    return this.#window;
  }

  /** Before a step: its starting state (a state kept for this step or later ones, from before a rollback, is dropped). */
  keep(state: TrainState): void {
    if (this.#window <= 0) return;
    while (this.#kept.length && this.#kept.at(-1)!.step >= state.step) this.#kept.pop();
    this.#kept.push(snapshotOf(state));
    if (this.#kept.length > this.#window) this.#kept.shift();
  }

  /** `state` back at the start of `toStep`, or of the oldest step kept when that is later; null when nothing is kept. */
  rollBack(state: TrainState, toStep: number): RolledBack | null {
    const at = this.#kept.find((s) => s.step >= toStep);
    if (!at) return null;
    restoreState(state, at);
    this.#kept.splice(this.#kept.indexOf(at) + 1);
    return { step: at.step, exposed: at.step - toStep };
  }
}
