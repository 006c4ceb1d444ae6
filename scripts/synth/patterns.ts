/**
 * Fills of shapes and backgrounds as functions of image position. Edges of
 * stripes, dots and lines are anti-aliased analytically (a one-pixel ramp on
 * the pattern's own distance), so only shape outlines need supersampling.
 * Coordinates are fractions of the image side; `pixel` is one pixel in them.
 */
import type { Rgb } from './attributes.ts';
import { mix32 } from './rng.ts';
import type { Background, PatternGeometry, SceneObject } from './scene.ts';

/** Coverage in [0, 1] of a region whose signed distance is `d`, over a ramp `w` wide. */
function ramp(d: number, w: number): number {
  return Math.min(Math.max(0.5 - d / w, 0), 1);
}

/** Square wave: 1 on the first half of each period. `s` in periods. */
function band(s: number, w: number): number {
  const c = Math.abs(s - 0.25 - Math.round(s - 0.25));
  return ramp(c - 0.25, w);
}

function line(s: number, halfWidth: number, w: number): number {
  return ramp(Math.abs(s - Math.round(s)) - halfWidth, w);
}

function hash01(x: number, y: number, seed: number): number {
  return mix32(Math.imul(x, 0x27d4eb2d) ^ mix32(Math.imul(y, 0x165667b1) ^ seed)) / 4294967296;
}

function valueNoise(x: number, y: number, seed: number): number {
  const ix = Math.floor(x);
  const iy = Math.floor(y);
  const fx = x - ix;
  const fy = y - iy;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const top = hash01(ix, iy, seed) * (1 - sx) + hash01(ix + 1, iy, seed) * sx;
  const bottom = hash01(ix, iy + 1, seed) * (1 - sx) + hash01(ix + 1, iy + 1, seed) * sx;
  return top * (1 - sy) + bottom * sy;
}

/** Pattern coordinates (s along the pattern's direction, t across), in periods. */
function along(g: PatternGeometry, u: number, v: number): number {
  return (u * Math.cos(g.angle) + v * Math.sin(g.angle)) / g.period + g.phase;
}
function across(g: PatternGeometry, u: number, v: number): number {
  return (v * Math.cos(g.angle) - u * Math.sin(g.angle)) / g.period;
}

function luminance(c: Rgb): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

function mixRgb(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** The second colour of a patterned fill: a light tint of dark colours, a shade of light ones. */
export function secondaryColour(object: SceneObject): Rgb {
  if (object.texture === 'gradient') return mixRgb(object.rgb, [0, 0, 0], 0.68);
  return luminance(object.rgb) > 150
    ? mixRgb(object.rgb, [0, 0, 0], 0.55)
    : mixRgb(object.rgb, [255, 255, 255], 0.62);
}

/**
 * How much of the secondary colour the fill shows at (u, v); `lx, ly` is the
 * position in the object's unit frame (for gradients that follow the shape).
 */
export function fillWeight(
  object: SceneObject, u: number, v: number, lx: number, ly: number, pixel: number, noiseSeed: number,
): number {
  const g = object.pattern;
  const w = pixel / g.period;
  switch (object.texture) {
    case 'solid':
      return 0;
    case 'striped':
      return band(along(g, u, v), w);
    case 'dotted': {
      const s = along(g, u, v);
      const t = across(g, u, v);
      return ramp(Math.hypot(s - Math.round(s), t - Math.round(t)) - 0.27, w);
    }
    case 'checkered': {
      const a = band(along(g, u, v), w);
      const b = band(across(g, u, v), w);
      return a + b - 2 * a * b;
    }
    case 'gradient':
      return Math.min(Math.max(0.5 + 0.5 * (lx * Math.cos(g.angle) + ly * Math.sin(g.angle)), 0), 1);
    case 'ringed':
      return band(Math.hypot(u - object.x, v - object.y) / g.period + g.phase, w);
    case 'zigzag': {
      const t = across(g, u, v) / 1.2;
      return band(along(g, u, v) + 1.2 * Math.abs(t - Math.round(t)), 2.2 * w);
    }
    case 'wavy':
      return band(along(g, u, v) + 0.45 * Math.sin((2 * Math.PI * across(g, u, v)) / 4), 1.25 * w);
    case 'crosshatched': {
      const s = along(g, u, v);
      const t = across(g, u, v);
      return Math.max(line((s + t) * Math.SQRT1_2, 0.1, w), line((s - t) * Math.SQRT1_2, 0.1, w));
    }
    case 'speckled':
      return hash01(Math.floor(u / pixel), Math.floor(v / pixel), noiseSeed) < 0.35 ? 1 : 0;
  }
}

/** Writes mix(a, b, t) into `out`. */
function mixInto(out: Float64Array, a: Rgb, b: Rgb, t: number): void {
  out[0] = a[0] + (b[0] - a[0]) * t;
  out[1] = a[1] + (b[1] - a[1]) * t;
  out[2] = a[2] + (b[2] - a[2]) * t;
}

/** The second tone of a patterned background, `strength` times as far from the base as a stripe's. */
export function backgroundAlternate(bg: Background): Rgb {
  const strength = bg.pattern === 'striped' ? 1 : bg.pattern === 'grid' ? 2 : 2.2;
  return luminance(bg.rgb) > 110
    ? mixRgb(bg.rgb, [0, 0, 0], 0.3 * strength)
    : mixRgb(bg.rgb, [255, 255, 255], 0.22 * strength);
}

/** Writes the background colour at (u, v) into `out`; `alternate` is backgroundAlternate(bg). */
export function backgroundAt(
  bg: Background, alternate: Rgb, u: number, v: number, pixel: number, noiseSeed: number, out: Float64Array,
): void {
  const g = bg.geometry;
  const w = pixel / g.period;
  switch (bg.pattern) {
    case 'plain':
      mixInto(out, bg.rgb, alternate, 0);
      return;
    case 'striped':
      mixInto(out, bg.rgb, alternate, band(along(g, u, v), w));
      return;
    case 'grid': {
      const s = u / g.period + g.phase;
      const t = v / g.period + g.phase;
      mixInto(out, bg.rgb, alternate, Math.max(line(s, 0.07, w), line(t, 0.07, w)));
      return;
    }
    case 'gradient': {
      const t = 0.5 + (u - 0.5) * Math.cos(g.angle) + (v - 0.5) * Math.sin(g.angle);
      mixInto(out, bg.rgb, alternate, Math.min(Math.max(t, 0), 1));
      return;
    }
    case 'noisy': {
      const n = valueNoise(u * 6, v * 6, noiseSeed) - 0.5
        + 0.35 * (hash01(Math.floor(u / pixel), Math.floor(v / pixel), noiseSeed ^ 0x5bd1e995) - 0.5);
      out[0] = bg.rgb[0] + 110 * n;
      out[1] = bg.rgb[1] + 110 * n;
      out[2] = bg.rgb[2] + 110 * n;
      return;
    }
  }
}
