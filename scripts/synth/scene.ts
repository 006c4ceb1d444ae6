/**
 * A scene is a fully concrete description of one image: every random choice
 * (jittered colour, exact centre, rotation, pattern phase) is made here, so
 * rendering is a pure function of the scene and captioning only chooses words.
 */
import {
  BACKGROUND_PATTERNS, BACKGROUND_TONES, COLOURS, COLOUR_NAMES, POSITIONS, POSITION_NAMES, SHAPES,
  SIZES, SIZE_NAMES, TEXTURES, TONE_NAMES,
  type BackgroundPattern, type ColourName, type PositionName, type Rgb, type ShapeName,
  type SizeName, type TextureName, type ToneName,
} from './attributes.ts';
import type { Rng } from './rng.ts';

export interface PatternGeometry {
  /** direction of stripes, waves and gradients, radians */
  readonly angle: number;
  /** repeat length, fraction of the image side */
  readonly period: number;
  /** offset in periods, [0, 1) */
  readonly phase: number;
}

export interface SceneObject {
  readonly shape: ShapeName;
  readonly colour: ColourName;
  /** the named colour after jitter */
  readonly rgb: Rgb;
  readonly texture: TextureName;
  readonly size: SizeName;
  readonly position: PositionName;
  /** centre, fractions of the image side (x right, y down) */
  readonly x: number;
  readonly y: number;
  /** fraction of the image side */
  readonly radius: number;
  readonly rotation: number;
  readonly pattern: PatternGeometry;
}

export interface Background {
  readonly pattern: BackgroundPattern;
  readonly tone: ToneName;
  readonly rgb: Rgb;
  readonly geometry: PatternGeometry;
}

export interface Scene {
  /** drawn in order; objects[0] is the main object, objects[1] an optional second one */
  readonly objects: readonly SceneObject[];
  readonly background: Background;
  /** seeds the per-pixel noise of noisy backgrounds and speckled fills */
  readonly noiseSeed: number;
}

export interface ObjectPools {
  readonly shapes: readonly ShapeName[];
  readonly colours: readonly ColourName[];
  readonly textures: readonly TextureName[];
  readonly sizes: readonly SizeName[];
  readonly positions: readonly PositionName[];
}

export interface ColourShape {
  readonly colour: ColourName;
  readonly shape: ShapeName;
}

export interface SceneConstraints {
  readonly main?: Partial<ObjectPools>;
  readonly second?: Partial<ObjectPools>;
  /** chance of a second object (default 0.3); it needs an off-centre, non-large main object */
  readonly secondProbability?: number;
  readonly backgrounds?: readonly BackgroundPattern[];
  readonly tones?: readonly ToneName[];
  /** colour-shape pairs no object of the scene may have */
  readonly excludeCombos?: readonly ColourShape[];
}

const ALL_POOLS: ObjectPools = {
  shapes: SHAPES, colours: COLOUR_NAMES, textures: TEXTURES, sizes: SIZE_NAMES, positions: POSITION_NAMES,
};
const PAIRABLE_SIZES: readonly SizeName[] = ['small', 'medium'];
const MIRROR: Record<PositionName, PositionName> = {
  centre: 'centre', left: 'right', right: 'left', top: 'bottom', bottom: 'top',
  'top left': 'bottom right', 'top right': 'bottom left',
  'bottom left': 'top right', 'bottom right': 'top left',
};
/** RGB distance below which an object would not stand out from a tone */
const MIN_CONTRAST = 110;
/** keeps the whole shape (which reaches 1.12 radii at its corners) a pixel inside the image */
const MARGIN = 0.02;
const REACH = 1.12;
const MAX_COMBO_TRIES = 64;

export function sampleScene(rng: Rng, constraints: SceneConstraints = {}): Scene {
  const main = { ...ALL_POOLS, ...constraints.main };
  const second = { ...ALL_POOLS, ...constraints.second };
  const excluded = constraints.excludeCombos ?? [];

  const pairPositions = main.positions.filter((p) => p !== 'centre');
  const pairSizes = main.sizes.filter((s) => PAIRABLE_SIZES.includes(s));
  const secondSizes = second.sizes.filter((s) => PAIRABLE_SIZES.includes(s));
  const wantsSecond = rng.chance(constraints.secondProbability ?? 0.3);
  const hasSecond = wantsSecond && pairPositions.length > 0 && pairSizes.length > 0 && secondSizes.length > 0;

  const first = sampleObject(rng, {
    ...main,
    positions: hasSecond ? pairPositions : main.positions,
    sizes: hasSecond ? pairSizes : main.sizes,
  }, excluded);
  const objects = [first];
  if (hasSecond) {
    const shapes = second.shapes.filter((s) => s !== first.shape);
    if (shapes.length > 0) {
      objects.push(sampleObject(rng, { ...second, shapes, sizes: secondSizes, positions: [MIRROR[first.position]] }, excluded));
    }
  }
  return { objects, background: sampleBackground(rng, objects, constraints), noiseSeed: rng.int(2 ** 32) };
}

function sampleObject(rng: Rng, pools: ObjectPools, excluded: readonly ColourShape[]): SceneObject {
  let shape = rng.pick(pools.shapes);
  let colour = rng.pick(pools.colours);
  for (let tries = 0; excluded.some((c) => c.colour === colour && c.shape === shape); tries++) {
    if (tries === MAX_COMBO_TRIES) throw new RangeError(`sampleScene: every ${colour} ${shape} is excluded`);
    shape = rng.pick(pools.shapes);
    colour = rng.pick(pools.colours);
  }
  const texture = rng.pick(pools.textures);
  const size = rng.pick(pools.sizes);
  const position = rng.pick(pools.positions);
  const radius = SIZES[size] * rng.uniform(0.9, 1.1);
  const [ax, ay] = POSITIONS[position];
  const place = (anchor: number) => clamp(anchor + rng.uniform(-0.04, 0.04), REACH * radius + MARGIN, 1 - REACH * radius - MARGIN);
  const x = place(ax);
  const y = place(ay);
  const quarterTurns = shape === 'arrow' ? rng.int(4) : 0;
  const rotation = (quarterTurns * Math.PI) / 2 + rng.uniform(-0.25, 0.25);
  return {
    shape, colour, rgb: jitter(rng, COLOURS[colour]), texture, size, position, x, y, radius, rotation,
    pattern: samplePattern(rng, clamp(radius * 0.5, 0.07, 0.12)),
  };
}

function sampleBackground(rng: Rng, objects: readonly SceneObject[], constraints: SceneConstraints): Background {
  const pattern = rng.pick(constraints.backgrounds ?? BACKGROUND_PATTERNS);
  const allowed = constraints.tones ?? TONE_NAMES;
  const contrasting = allowed.filter((t) =>
    objects.every((o) => distance(BACKGROUND_TONES[t], COLOURS[o.colour]) >= MIN_CONTRAST));
  const tone = contrasting.length > 0
    ? rng.pick(contrasting)
    : mostContrasting(allowed, objects);
  const geometry = samplePattern(rng, rng.uniform(0.1, 0.16));
  return { pattern, tone, rgb: jitter(rng, BACKGROUND_TONES[tone], 8), geometry };
}

function samplePattern(rng: Rng, period: number): PatternGeometry {
  return {
    angle: (rng.int(4) * Math.PI) / 4 + rng.uniform(-0.1, 0.1),
    period: period * rng.uniform(0.85, 1.15),
    phase: rng.next(),
  };
}

function jitter(rng: Rng, base: Rgb, amount = 14): Rgb {
  const brightness = rng.uniform(0.92, 1.08);
  const channel = (c: number) => clamp(Math.round((c + rng.uniform(-amount, amount)) * brightness), 0, 255);
  return [channel(base[0]), channel(base[1]), channel(base[2])];
}

function mostContrasting(tones: readonly ToneName[], objects: readonly SceneObject[]): ToneName {
  const worst = (t: ToneName) => Math.min(...objects.map((o) => distance(BACKGROUND_TONES[t], COLOURS[o.colour])));
  return tones.reduce((best, t) => (worst(t) > worst(best) ? t : best));
}

function distance(a: Rgb, b: Rgb): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
