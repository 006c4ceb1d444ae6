/**
 * Signed distance functions of the shapes in a unit frame (y up, the shape
 * fits the unit disc; negative inside). Each is exact or conservative (never
 * larger in magnitude than the true distance), which is what lets the
 * renderer skip supersampling for pixels farther than a pixel from an edge.
 * Star and heart follow Inigo Quilez's 2D distance functions.
 */
import type { ShapeName } from './attributes.ts';

export type Sdf = (x: number, y: number) => number;

const SQRT2 = Math.SQRT2;

function regularPolygon(sides: number, circumradius: number, vertexUp: boolean): Sdf {
  const apothem = circumradius * Math.cos(Math.PI / sides);
  const offset = Math.PI / 2 + (vertexUp ? Math.PI / sides : 0);
  const normals = Array.from({ length: sides }, (_, i) => {
    const a = offset + (2 * Math.PI * i) / sides;
    return [Math.cos(a), Math.sin(a)] as const;
  });
  return (x, y) => {
    let d = -Infinity;
    for (const [nx, ny] of normals) d = Math.max(d, x * nx + y * ny - apothem);
    return d;
  };
}

function box(x: number, y: number, hx: number, hy: number): number {
  const dx = Math.abs(x) - hx;
  const dy = Math.abs(y) - hy;
  return Math.hypot(Math.max(dx, 0), Math.max(dy, 0)) + Math.min(Math.max(dx, dy), 0);
}

function star5(x: number, y: number, r: number, innerRatio: number): number {
  const k1x = 0.809016994375;
  const k1y = -0.587785252292;
  let px = Math.abs(x);
  let py = y;
  let d = 2 * Math.max(k1x * px + k1y * py, 0);
  px -= d * k1x;
  py -= d * k1y;
  d = 2 * Math.max(-k1x * px + k1y * py, 0);
  px -= d * -k1x;
  py -= d * k1y;
  px = Math.abs(px);
  py -= r;
  const bax = innerRatio * -k1y;
  const bay = innerRatio * k1x - 1;
  const h = Math.min(Math.max((px * bax + py * bay) / (bax * bax + bay * bay), 0), r);
  return Math.hypot(px - bax * h, py - bay * h) * Math.sign(py * bax - px * bay);
}

/** Quilez's heart: tip at the origin, lobes up to y ≈ 1.1, |x| ≤ 0.6. */
function heart(x: number, y: number): number {
  const px = Math.abs(x);
  if (px + y > 1) return Math.hypot(px - 0.25, y - 0.75) - SQRT2 / 4;
  const m = 0.5 * Math.max(px + y, 0);
  return Math.sqrt(Math.min(px * px + (y - 1) ** 2, (px - m) ** 2 + (y - m) ** 2)) * Math.sign(px - y);
}

const triangle = regularPolygon(3, 1.1, true);
const square = regularPolygon(4, 0.78 * SQRT2, false);
const pentagon = regularPolygon(5, 0.95, true);
const hexagon = regularPolygon(6, 0.92, true);
const diamondNormal = Math.hypot(1 / 0.68, 1);

export const SHAPE_SDFS: Record<ShapeName, Sdf> = {
  circle: (x, y) => Math.hypot(x, y) - 0.9,
  square,
  triangle,
  star: (x, y) => star5(x, y, 1, 0.42),
  cross: (x, y) => Math.min(box(x, y, 0.9, 0.28), box(x, y, 0.28, 0.9)),
  heart: (x, y) => heart(x / 1.6, y / 1.6 + 0.66) * 1.6,
  ring: (x, y) => Math.abs(Math.hypot(x, y) - 0.7) - 0.22,
  diamond: (x, y) => (Math.abs(x) / 0.68 + Math.abs(y) - 1) / diamondNormal,
  hexagon,
  arrow: (x, y) => {
    const shaft = box(x + 0.35, y, 0.55, 0.2);
    const head = Math.max(0.15 - x, 0.6 * x + 0.8 * y - 0.57, 0.6 * x - 0.8 * y - 0.57);
    return Math.min(shaft, head);
  },
  pentagon,
  crescent: (x, y) => Math.max(Math.hypot(x - 0.3, y - 0.1) - 0.9, 0.75 - Math.hypot(x - 0.75, y - 0.25)),
};
