import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateCaptions, pretrainScene } from '../../../scripts/synth/corpus.ts';
import {
  HELD_OUT_COMBOS, HELD_OUT_TEXTURES, SPLITS, isTaskSeed, pretrainSeed, taskSeed,
} from '../../../scripts/synth/held-out.ts';
import { TASKS } from '../../../scripts/synth/tasks.ts';

test('pretraining seeds and task seeds never meet', () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.nat(), fc.nat(127), fc.constantFrom(...SPLITS), fc.nat(127), fc.nat(65535),
    (run, index, task, split, cls, i) => {
      assert.equal(isTaskSeed(pretrainSeed(run, index)), false);
      assert.equal(isTaskSeed(taskSeed(task, split, cls, i)), true);
    },
  ));
});

test('task seeds are distinct across tasks, splits, classes and images', () => {
  const seen = new Set<number>();
  for (const task of TASKS) {
    for (const split of SPLITS) {
      for (let c = 0; c < task.classes.length; c++) {
        for (let i = 0; i < 64; i++) seen.add(taskSeed(task.index, split, c, i));
      }
    }
  }
  const expected = TASKS.reduce((n, t) => n + t.classes.length, 0) * SPLITS.length * 64;
  assert.equal(seen.size, expected);
  assert.throws(() => taskSeed(0, 'train', 0, 65536), RangeError);
});

test('task indices are unique', () => {
  assert.equal(new Set(TASKS.map((t) => t.index)).size, TASKS.length);
});

test('pretraining never draws nor says a held-out texture or combination', () => {
  for (let i = 0; i < 5000; i++) {
    const { scene, caption } = pretrainScene(0, i);
    for (const o of scene.objects) {
      assert.ok(!HELD_OUT_TEXTURES.includes(o.texture), `scene ${i} has a ${o.texture} fill`);
      assert.ok(!HELD_OUT_COMBOS.some((c) => c.colour === o.colour && c.shape === o.shape), `scene ${i}: ${o.colour} ${o.shape}`);
    }
    for (const t of HELD_OUT_TEXTURES) assert.ok(!caption.includes(t), caption);
  }
});

test('pretraining captions stay well inside a 32-position text tower', () => {
  let longest = 0;
  for (const caption of generateCaptions(0, 5000)) longest = Math.max(longest, caption.split(/[ .]/).length);
  assert.ok(longest <= 26, `a caption has ${longest} words`);
});
