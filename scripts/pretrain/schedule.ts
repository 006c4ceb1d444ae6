/** Learning rate at step t (0-based) of `total`: linear warmup to `peak`, then cosine to `peak · floor`. */
export interface LrSchedule {
  readonly peak: number;
  readonly warmup: number;
  readonly total: number;
  /** final lr as a fraction of the peak */
  readonly floor: number;
}

export function warmupCosine(s: LrSchedule, t: number): number {
  if (t < s.warmup) return (s.peak * (t + 1)) / s.warmup;
  const span = Math.max(1, s.total - s.warmup - 1);
  const progress = Math.min(1, (t - s.warmup) / span);
  return s.peak * (s.floor + ((1 - s.floor) * (1 + Math.cos(Math.PI * progress))) / 2);
}
