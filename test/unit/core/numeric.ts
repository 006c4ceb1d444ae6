/** Numeric comparisons for the core tests: errors against a reference, and finite differences. */

export type Numbers = ArrayLike<number>;

export function maxAbs(xs: Numbers): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]));
  return m;
}

export function maxAbsDiff(a: Numbers, b: Numbers): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max |a − ref| / max |ref|: the parity measure of the issue (≤ 1e-4). */
export const relativeError = (a: Numbers, ref: Numbers): number => maxAbsDiff(a, ref) / maxAbs(ref);

/** true when every element is bitwise equal (NaN = NaN, but +0 ≠ −0 like the bytes). */
export function bitwiseEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.every((v, i) => v === ub[i]);
}

/** Central difference (f(x + h·e_i) − f(x − h·e_i)) / 2h of a function of a Float32Array, in place on x. */
export function centralDifference(f: (x: Float32Array) => number, x: Float32Array, i: number, h: number): number {
  const saved = x[i];
  x[i] = saved + h;
  const up = f(x);
  x[i] = saved - h;
  const down = f(x);
  x[i] = saved;
  // the step actually taken in float32
  return (up - down) / (Math.fround(saved + h) - Math.fround(saved - h));
}

/** Indices of the k largest |g| (the coordinates a finite difference can resolve best), then a few spread ones. */
export function probeIndices(g: Numbers, k: number, spread = 2): number[] {
  const order = Array.from({ length: g.length }, (_, i) => i).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]));
  const picked = order.slice(0, k);
  for (let j = 1; j <= spread; j++) {
    const i = order[Math.floor((order.length * j) / (spread + 2))];
    if (!picked.includes(i)) picked.push(i);
  }
  return picked;
}

export const flatten = (rows: readonly (readonly number[])[]): number[] => rows.flat();
