/**
 * Pure renderer: a scene becomes RGB pixels (HWC, 8-bit), no I/O. Pixels
 * farther than EDGE pixels from a shape's outline are entirely inside or
 * outside it (the distance functions are conservative), so only the ones on
 * the outline are supersampled, SUPERSAMPLE × SUPERSAMPLE times.
 */
import type { Rgb } from './attributes.ts';
import { backgroundAlternate, backgroundAt, fillWeight, secondaryColour } from './patterns.ts';
import type { Scene, SceneObject } from './scene.ts';
import { SHAPE_SDFS, type Sdf } from './shapes.ts';

const SUPERSAMPLE = 4;
/** half the diagonal of a pixel, plus a little */
const EDGE = 0.75;

interface PreparedObject {
  readonly object: SceneObject;
  readonly sdf: Sdf;
  readonly cos: number;
  readonly sin: number;
  readonly secondary: Rgb;
}

export function renderScene(scene: Scene, size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`renderScene: size must be a positive integer, got ${size}`);
  const pixels = new Uint8Array(size * size * 3);
  const pixel = 1 / size;
  const prepared = scene.objects.map(prepare);
  const alternate = backgroundAlternate(scene.background);
  const colour = new Float64Array(3);
  const sample = new Float64Array(3);
  const sum = new Float64Array(3);
  const subCount = SUPERSAMPLE * SUPERSAMPLE;

  for (let py = 0; py < size; py++) {
    const v = (py + 0.5) * pixel;
    for (let px = 0; px < size; px++) {
      const u = (px + 0.5) * pixel;
      backgroundAt(scene.background, alternate, u, v, pixel, scene.noiseSeed, colour);
      for (const p of prepared) {
        const r = p.object.radius;
        const distance = localDistance(p, u, v) * (r / pixel);
        if (distance >= EDGE) continue;
        if (distance <= -EDGE) {
          shade(p, u, v, pixel, scene.noiseSeed, colour);
          continue;
        }
        sum.fill(0);
        let inside = 0;
        for (let sy = 0; sy < SUPERSAMPLE; sy++) {
          const sv = v + ((sy + 0.5) / SUPERSAMPLE - 0.5) * pixel;
          for (let sx = 0; sx < SUPERSAMPLE; sx++) {
            const su = u + ((sx + 0.5) / SUPERSAMPLE - 0.5) * pixel;
            if (localDistance(p, su, sv) >= 0) continue;
            shade(p, su, sv, pixel, scene.noiseSeed, sample);
            sum[0] += sample[0];
            sum[1] += sample[1];
            sum[2] += sample[2];
            inside++;
          }
        }
        const outside = subCount - inside;
        for (let c = 0; c < 3; c++) colour[c] = (sum[c] + colour[c] * outside) / subCount;
      }
      const o = (py * size + px) * 3;
      pixels[o] = toByte(colour[0]);
      pixels[o + 1] = toByte(colour[1]);
      pixels[o + 2] = toByte(colour[2]);
    }
  }
  return pixels;
}

function prepare(object: SceneObject): PreparedObject {
  return {
    object,
    sdf: SHAPE_SDFS[object.shape],
    cos: Math.cos(object.rotation),
    sin: Math.sin(object.rotation),
    secondary: secondaryColour(object),
  };
}

/** Signed distance in units of the object's radius (y flipped to point up). */
function localDistance(p: PreparedObject, u: number, v: number): number {
  const dx = (u - p.object.x) / p.object.radius;
  const dy = (p.object.y - v) / p.object.radius;
  return p.sdf(dx * p.cos + dy * p.sin, dy * p.cos - dx * p.sin);
}

function shade(p: PreparedObject, u: number, v: number, pixel: number, noiseSeed: number, out: Float64Array): void {
  const dx = (u - p.object.x) / p.object.radius;
  const dy = (p.object.y - v) / p.object.radius;
  const t = fillWeight(p.object, u, v, dx * p.cos + dy * p.sin, dy * p.cos - dx * p.sin, pixel, noiseSeed);
  const a = p.object.rgb;
  const b = p.secondary;
  out[0] = a[0] + (b[0] - a[0]) * t;
  out[1] = a[1] + (b[1] - a[1]) * t;
  out[2] = a[2] + (b[2] - a[2]) * t;
}

function toByte(x: number): number {
  return x <= 0 ? 0 : x >= 255 ? 255 : Math.round(x);
}
