/**
 * How the step driver combines the workers' results into one update in
 * federated (local-δ) mode, where each worker's δ and gradients are its own
 * and nothing can be checked by recomputing it. `mean` is the plain
 * average; `median` and `trimmed-mean` are coordinate-wise and bound what a
 * minority of workers sending arbitrary numbers can do to the update
 * (Yin et al. 2018, "Byzantine-robust distributed learning"): the median
 * stays within the honest values while fewer than half are wrong, the
 * K-trimmed mean while at most K are.
 */
import { invalidArgument } from './errors.ts';

export const AggregationRules = ['mean', 'median', 'trimmed-mean'] as const;
export type AggregationRule = (typeof AggregationRules)[number];

export interface Aggregation {
  readonly rule: AggregationRule;
  /** trimmed-mean: values dropped at each end of every coordinate */
  readonly trim: number;
}

/** The fewest values the rule can combine. */
export const fewestValues = (a: Aggregation): number => (a.rule === 'trimmed-mean' ? 2 * a.trim + 1 : 1);

/**
 * One vector from several, coordinate-wise. `mean` weighs value i by
 * weights[i] (a worker's sample count, so it equals the sum over every
 * sample); the robust rules weigh every value the same, so that no worker
 * outweighs the others by claiming more samples.
 */
export function combine(a: Aggregation, values: readonly Float32Array[], weights: readonly number[]): Float32Array {
  if (values.length < fewestValues(a)) {
    throw invalidArgument(`--aggregate ${a.rule}${a.rule === 'trimmed-mean' ? ` --trim ${a.trim}` : ''} needs at least ${fewestValues(a)} workers' results, got ${values.length}`);
  }
  const n = values[0].length;
  for (const v of values) if (v.length !== n) throw invalidArgument(`internal: combining vectors of ${n} and ${v.length} values`);
  const out = new Float32Array(n);
  if (a.rule === 'mean') {
    const total = weights.reduce((s, w) => s + w, 0);
    values.forEach((v, i) => {
      for (let j = 0; j < n; j++) out[j] += (v[j] * weights[i]) / total;
    });
    return out;
  }
  const k = values.length;
  const column = new Float64Array(k);
  const lo = a.rule === 'median' ? Math.floor((k - 1) / 2) : a.trim;
  const hi = a.rule === 'median' ? Math.ceil((k - 1) / 2) : k - 1 - a.trim;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < k; i++) column[i] = values[i][j];
    column.sort();
    let s = 0;
    for (let i = lo; i <= hi; i++) s += column[i];
    out[j] = s / (hi - lo + 1);
  }
  return out;
}
