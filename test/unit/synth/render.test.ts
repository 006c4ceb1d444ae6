import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SHAPES, type PositionName, type ShapeName } from '../../../scripts/synth/attributes.ts';
import { renderScene } from '../../../scripts/synth/render.ts';
import { createRng } from '../../../scripts/synth/rng.ts';
import { sampleScene, type Scene } from '../../../scripts/synth/scene.ts';

const SIZE = 64;

function sceneOf(seed: number, shape: ShapeName, position: PositionName): Scene {
  return sampleScene(createRng(seed), {
    main: { shapes: [shape], textures: ['solid'], sizes: ['medium'], positions: [position] },
    secondProbability: 0,
    backgrounds: ['plain'],
  });
}

/** Centroid (in pixels) of the pixels that differ from the background colour, and their count. */
function foreground(pixels: Uint8Array, scene: Scene): { x: number; y: number; count: number } {
  const [br, bg, bb] = scene.background.rgb;
  let sx = 0;
  let sy = 0;
  let count = 0;
  for (let i = 0; i < SIZE * SIZE; i++) {
    const d = Math.abs(pixels[3 * i] - br) + Math.abs(pixels[3 * i + 1] - bg) + Math.abs(pixels[3 * i + 2] - bb);
    if (d > 30) {
      sx += (i % SIZE) + 0.5;
      sy += Math.floor(i / SIZE) + 0.5;
      count++;
    }
  }
  return { x: sx / count, y: sy / count, count };
}

test('the same seed renders the same bytes; another seed renders other bytes', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
    const a = renderScene(sampleScene(createRng(seed)), SIZE);
    const b = renderScene(sampleScene(createRng(seed)), SIZE);
    const c = renderScene(sampleScene(createRng(seed ^ 1)), SIZE);
    assert.equal(a.length, SIZE * SIZE * 3);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  }), { numRuns: 40 });
});

test('every shape appears where the scene puts it', () => {
  const positions: PositionName[] = ['left', 'right', 'top', 'bottom', 'centre', 'top left', 'bottom right'];
  for (const shape of SHAPES) {
    for (const [k, position] of positions.entries()) {
      const scene = sceneOf(100 * k + 7, shape, position);
      const object = scene.objects[0];
      const found = foreground(renderScene(scene, SIZE), scene);
      const radiusPx = object.radius * SIZE;
      assert.ok(found.count > 0.25 * radiusPx ** 2, `${shape} ${position}: only ${found.count} foreground pixels`);
      assert.ok(found.count < 4 * radiusPx ** 2, `${shape} ${position}: ${found.count} foreground pixels`);
      const off = Math.hypot(found.x - object.x * SIZE, found.y - object.y * SIZE);
      assert.ok(off < 0.45 * radiusPx, `${shape} ${position}: centroid ${off.toFixed(1)} px from the centre`);
    }
  }
});

test('positions are where their names say', () => {
  const at = (position: PositionName) => {
    const scene = sceneOf(3, 'circle', position);
    return foreground(renderScene(scene, SIZE), scene);
  };
  assert.ok(at('left').x < SIZE / 2 - 8 && at('right').x > SIZE / 2 + 8);
  assert.ok(at('top').y < SIZE / 2 - 8 && at('bottom').y > SIZE / 2 + 8);
  assert.ok(Math.abs(at('centre').x - SIZE / 2) < 4 && Math.abs(at('centre').y - SIZE / 2) < 4);
});

test('outlines are anti-aliased: edge pixels blend shape and background', () => {
  const scene = sceneOf(11, 'circle', 'centre');
  const pixels = renderScene(scene, SIZE);
  const fg = scene.objects[0].rgb;
  const bg = scene.background.rgb;
  const channel = fg.map((f, c) => Math.abs(f - bg[c])).reduce((best, d, c, all) => (d > all[best] ? c : best), 0);
  const lo = Math.min(fg[channel], bg[channel]) + 10;
  const hi = Math.max(fg[channel], bg[channel]) - 10;
  let blended = 0;
  for (let i = 0; i < SIZE * SIZE; i++) if (pixels[3 * i + channel] > lo && pixels[3 * i + channel] < hi) blended++;
  const circumference = 2 * Math.PI * 0.9 * scene.objects[0].radius * SIZE;
  assert.ok(blended > 0.5 * circumference, `${blended} blended pixels on a ${circumference.toFixed(0)} px outline`);
});

test('a bad size is refused', () => {
  const scene = sampleScene(createRng(1));
  assert.throws(() => renderScene(scene, 0), RangeError);
  assert.throws(() => renderScene(scene, 6.5), RangeError);
});
