/**
 * The concepts the generator draws from. Every name here is also the word the
 * captions use, so a class name in a few-shot task is a phrase the text tower
 * has (or, for the held-out ones, has not) seen in pretraining.
 */
export type Rgb = readonly [number, number, number];

export const SHAPES = [
  'circle', 'square', 'triangle', 'star', 'cross', 'heart',
  'ring', 'diamond', 'hexagon', 'arrow', 'pentagon', 'crescent',
] as const;
export type ShapeName = (typeof SHAPES)[number];

export const COLOURS = {
  red: [220, 30, 30],
  orange: [245, 130, 20],
  yellow: [240, 215, 30],
  green: [40, 165, 60],
  cyan: [30, 200, 215],
  blue: [40, 80, 220],
  purple: [135, 50, 190],
  pink: [245, 110, 180],
  brown: [125, 75, 35],
  white: [245, 245, 245],
} as const satisfies Record<string, Rgb>;
export type ColourName = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as ColourName[];

/** Fills of a shape. The last four are never drawn in pretraining (see held-out.ts). */
export const TEXTURES = [
  'solid', 'striped', 'dotted', 'checkered', 'gradient', 'ringed',
  'zigzag', 'wavy', 'crosshatched', 'speckled',
] as const;
export type TextureName = (typeof TEXTURES)[number];

export const SIZES = { small: 0.11, medium: 0.17, large: 0.25 } as const;
export type SizeName = keyof typeof SIZES;
export const SIZE_NAMES = Object.keys(SIZES) as SizeName[];

/** Anchor of each position as fractions of the image (x right, y down). */
export const POSITIONS = {
  centre: [0.5, 0.5],
  left: [0.27, 0.5],
  right: [0.73, 0.5],
  top: [0.5, 0.27],
  bottom: [0.5, 0.73],
  'top left': [0.27, 0.27],
  'top right': [0.73, 0.27],
  'bottom left': [0.27, 0.73],
  'bottom right': [0.73, 0.73],
} as const satisfies Record<string, readonly [number, number]>;
export type PositionName = keyof typeof POSITIONS;
export const POSITION_NAMES = Object.keys(POSITIONS) as PositionName[];

export const BACKGROUND_PATTERNS = ['plain', 'striped', 'noisy', 'grid', 'gradient'] as const;
export type BackgroundPattern = (typeof BACKGROUND_PATTERNS)[number];

/** Background tones are neutral so that "red" always names the object. */
export const BACKGROUND_TONES = {
  white: [238, 238, 234],
  grey: [128, 128, 128],
  black: [22, 22, 26],
  beige: [222, 205, 170],
} as const satisfies Record<string, Rgb>;
export type ToneName = keyof typeof BACKGROUND_TONES;
export const TONE_NAMES = Object.keys(BACKGROUND_TONES) as ToneName[];
