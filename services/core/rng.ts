/**
 * Counter-based randomness. Every random draw of a run (K-shot picks, epoch
 * permutations, augmentation, dropout masks, random starts, LoRA init) comes
 * from a stream keyed by integers such as (seed, step, round, sample index),
 * never from call order or from which worker runs it, so any process that
 * computes the same sample draws the same numbers.
 */

/** Mixes 32-bit words into one key (murmur3-style finaliser after each word). */
export function mixKey(...words: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    h = (h + 0x6a09e667) >>> 0;
  }
  return h >>> 0;
}

/** A stable 32-bit word for a string (FNV-1a), to use names as key parts. */
export function wordOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A sequential generator on one key (xoshiro128**, seeded through splitmix32). */
export class RandomStream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(key: number) {
    let z = key >>> 0;
    const next = () => {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
      t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
      return (t ^ (t >>> 15)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  static of(...words: readonly number[]): RandomStream {
    return new RandomStream(mixKey(...words));
  }

  /** a uniform 32-bit word */
  nextU32(): number {
    const result = Math.imul(((Math.imul(this.s1, 5) << 7) | (Math.imul(this.s1, 5) >>> 25)) >>> 0, 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = ((this.s3 << 11) | (this.s3 >>> 21)) >>> 0;
    return result;
  }

  /** uniform in [0, 1) with 24 bits, exactly representable in float32 */
  uniform(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** uniform integer in [0, n) */
  below(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** standard normal (Box–Muller) */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    const u = 1 - this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** a permutation of 0..n-1 (Fisher–Yates) */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }
}

/** Purposes of random streams, one word each, so streams of different uses never collide. */
export const Purpose = {
  loraInit: wordOf('lora-init'),
  epochPermutation: wordOf('epoch-permutation'),
  augment: wordOf('augment'),
  imageDropout: wordOf('image-dropout'),
  textDropout: wordOf('text-dropout'),
  randomStart: wordOf('random-start'),
  kShot: wordOf('k-shot'),
  apgdStart: wordOf('apgd-start'),
  squareSearch: wordOf('square-search'),
  verify: wordOf('verify'),
  evalSubset: wordOf('eval-subset'),
} as const;
