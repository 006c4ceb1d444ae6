import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BACKGROUND_PATTERNS, COLOUR_NAMES, SHAPES, SIZE_NAMES, TEXTURES, TONE_NAMES,
} from '../../../scripts/synth/attributes.ts';
import { GENERIC_NOUNS, captionFor, sampleScene } from '../../../scripts/synth/captions.ts';
import { createRng } from '../../../scripts/synth/rng.ts';
import type { Scene } from '../../../scripts/synth/scene.ts';

const words = (caption: string) => new Set(caption.replace(/\.$/, '').split(' '));

function captioned(seed: number): { scene: Scene; caption: string } {
  const rng = createRng(seed);
  const scene = sampleScene(rng);
  return { scene, caption: captionFor(scene, rng) };
}

test('a caption names each object by its shape or a generic noun', () => {
  for (let seed = 0; seed < 500; seed++) {
    const { scene, caption } = captioned(seed);
    const said = caption.replace(/\.$/, '').split(' ');
    const nouns = said.filter((x) => scene.objects.some((o) => o.shape === x)).length
      + said.filter((x) => (GENERIC_NOUNS as readonly string[]).includes(x)).length;
    assert.ok(nouns >= scene.objects.length, `"${caption}" does not name all ${scene.objects.length} objects`);
  }
});

test('a caption never names an attribute the scene does not have', () => {
  const vocabulary = new Set<string>([
    ...SHAPES, ...COLOUR_NAMES, ...SIZE_NAMES, ...TEXTURES, ...BACKGROUND_PATTERNS, ...TONE_NAMES,
  ]);
  for (let seed = 0; seed < 2000; seed++) {
    const { scene, caption } = captioned(seed);
    const present = new Set<string>([
      scene.background.pattern, scene.background.tone,
      ...scene.objects.flatMap((o) => [o.shape, o.colour, o.size, o.texture]),
    ]);
    for (const word of words(caption)) {
      if (vocabulary.has(word)) assert.ok(present.has(word), `"${caption}" says ${word}`);
    }
  }
});

test('over many captions every attribute of the main object gets said', () => {
  let colour = 0;
  let size = 0;
  let texture = 0;
  let position = 0;
  let background = 0;
  const n = 1000;
  for (let seed = 0; seed < n; seed++) {
    const { scene, caption } = captioned(seed);
    const main = scene.objects[0];
    const w = words(caption);
    if (w.has(main.colour)) colour++;
    if (w.has(main.size)) size++;
    if (main.texture !== 'solid' && w.has(main.texture)) texture++;
    if (caption.includes(main.position.split(' ')[0])) position++;
    if (caption.includes('background')) background++;
  }
  assert.ok(colour > 0.75 * n, `colour said ${colour}/${n}`);
  assert.ok(size > 0.35 * n, `size said ${size}/${n}`);
  assert.ok(texture > 0.4 * n, `texture said ${texture}/${n}`);
  assert.ok(position > 0.3 * n, `position said ${position}/${n}`);
  assert.ok(background > 0.2 * n, `background said ${background}/${n}`);
});

test('articles agree with the next word', () => {
  for (let seed = 0; seed < 500; seed++) {
    const { caption } = captioned(seed);
    assert.doesNotMatch(caption, /\ba [aeiou]/, caption);
    assert.doesNotMatch(caption, /\ban [^aeiou]/, caption);
  }
});
