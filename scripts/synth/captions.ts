/**
 * Natural captions for scenes. Each caption names a random subset of the
 * scene's attributes through one of several templates, and never names an
 * attribute the scene does not have.
 */
import type { BackgroundPattern, PositionName } from './attributes.ts';
import type { Rng } from './rng.ts';
import type { Background, Scene, SceneObject } from './scene.ts';

export { sampleScene } from './scene.ts';

/** Nouns used instead of the shape's name, so a texture or colour can be matched alone. */
export const GENERIC_NOUNS = ['shape', 'object'] as const;

const POSITION_PHRASES: Record<PositionName, readonly string[]> = {
  centre: ['in the centre', 'in the middle'],
  left: ['on the left'],
  right: ['on the right'],
  top: ['at the top'],
  bottom: ['at the bottom'],
  'top left': ['in the top left', 'in the top left corner'],
  'top right': ['in the top right', 'in the top right corner'],
  'bottom left': ['in the bottom left', 'in the bottom left corner'],
  'bottom right': ['in the bottom right', 'in the bottom right corner'],
};

const BACKGROUND_WORDS: Record<Exclude<BackgroundPattern, 'plain'>, string> = {
  striped: 'striped', noisy: 'noisy', grid: 'grid', gradient: 'gradient',
};

type Parts = { np: string; pos: string; bg: string };

const SINGLE_TEMPLATES: readonly ((p: Parts) => string)[] = [
  (p) => p.np,
  (p) => `a photo of ${p.np}`,
  (p) => `a photo of ${p.np} ${p.pos}`,
  (p) => `${p.np} ${p.pos}`,
  (p) => `${p.np} on ${p.bg}`,
  (p) => `a photo of ${p.np} on ${p.bg}`,
  (p) => `${p.np} ${p.pos} on ${p.bg}`,
  (p) => `an image of ${p.np} ${p.pos}`,
  (p) => `there is ${p.np} ${p.pos}`,
  (p) => `a picture of ${p.np}`,
];

type PairParts = { a: Parts; b: Parts; bg: string };

const PAIR_TEMPLATES: readonly ((p: PairParts) => string)[] = [
  (p) => `${p.a.np} and ${p.b.np}`,
  (p) => `a photo of ${p.a.np} and ${p.b.np}`,
  (p) => `${p.a.np} ${p.a.pos} and ${p.b.np} ${p.b.pos}`,
  (p) => `${p.a.np} next to ${p.b.np}`,
  (p) => `${p.a.np} and ${p.b.np} on ${p.bg}`,
];

/** Half the captions end with a full stop, as the prompts "a photo of a {}." do. */
export function captionFor(scene: Scene, rng: Rng): string {
  const bg = backgroundPhrase(scene.background, rng);
  const [first, second] = scene.objects;
  const caption = second === undefined
    ? rng.pick(SINGLE_TEMPLATES)(parts(first, bg, rng))
    : rng.pick(PAIR_TEMPLATES)({ a: parts(first, bg, rng), b: parts(second, bg, rng), bg });
  return rng.chance(0.5) ? `${caption}.` : caption;
}

function parts(object: SceneObject, bg: string, rng: Rng): Parts {
  return { np: nounPhrase(object, rng), pos: rng.pick(POSITION_PHRASES[object.position]), bg };
}

/** "a small striped red star": each attribute word is optional, the order is fixed. */
function nounPhrase(object: SceneObject, rng: Rng): string {
  const words: string[] = [];
  if (rng.chance(0.5)) words.push(object.size);
  if (rng.chance(object.texture === 'solid' ? 0.2 : 0.7)) words.push(object.texture);
  if (rng.chance(0.85)) words.push(object.colour);
  words.push(rng.chance(0.9) ? object.shape : rng.pick(GENERIC_NOUNS));
  return withArticle(words.join(' '));
}

function backgroundPhrase(background: Background, rng: Rng): string {
  if (background.pattern !== 'plain') return withArticle(`${BACKGROUND_WORDS[background.pattern]} background`);
  return withArticle(`${rng.chance(0.2) ? 'plain ' : ''}${background.tone} background`);
}

function withArticle(phrase: string): string {
  return `${/^[aeiou]/.test(phrase) ? 'an' : 'a'} ${phrase}`;
}
