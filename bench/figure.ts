/**
 * One measured figure of the suite: its value, the ratio it is read as
 * (against a peak, a baseline or the other stack, measured in the same run)
 * and, where issue 8 states one, the goal. Informational: a figure that
 * misses its goal is printed as such, never failed.
 */
export interface Goal {
  readonly op: '<=' | '>=';
  readonly target: number;
  /** what the goal is about: the figure's value or its ratio */
  readonly on: 'value' | 'ratio';
}

export interface Figure {
  /** stable key in results.json, e.g. "step.vit-b-32.native.fraction_of_peak" */
  readonly id: string;
  readonly label: string;
  /** null: not measured here (see note) */
  readonly value: number | null;
  readonly unit: string;
  readonly ratio?: { readonly value: number | null; readonly of: string };
  readonly goal?: Goal;
  /** which kernel, why not available, how to enable */
  readonly note?: string;
}

/** true/false when the goal's operand was measured, null otherwise (or without a goal). */
export function goalMet(f: Figure): boolean | null {
  if (!f.goal) return null;
  const x = f.goal.on === 'ratio' ? f.ratio?.value : f.value;
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  return f.goal.op === '<=' ? x <= f.goal.target : x >= f.goal.target;
}

/** A figure this run could not measure, with the reason. */
export const unavailable = (id: string, label: string, unit: string, why: string, goal?: Goal): Figure => ({ id, label, value: null, unit, note: why, goal });

/** a/b, or null when either is missing or b is zero */
export function ratioOf(a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || b === null || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? null : a / b;
}
