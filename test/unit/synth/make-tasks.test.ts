import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { makeTasks } from '../../../scripts/synth/make-tasks.ts';
import { TASKS } from '../../../scripts/synth/tasks.ts';

test('make-tasks writes <task>/{train,test}/<class>/NNNN.png, 64×64 RGB, reproducibly', async () => {
  const out = mkdtempSync(join(tmpdir(), 'synth-tasks-'));
  try {
    const options = { out, perClass: { train: 2, test: 3 }, size: 64, tasks: TASKS };
    const written = await makeTasks(options);
    assert.deepEqual(written.map((t) => t.name), TASKS.map((t) => t.name));
    assert.deepEqual(readdirSync(out).sort(), TASKS.map((t) => t.name).sort());
    for (const task of TASKS) {
      assert.ok(task.classes.length >= 10, `${task.name} has ${task.classes.length} classes`);
      assert.deepEqual(readdirSync(join(out, task.name)).sort(), ['test', 'train']);
      for (const [split, n] of Object.entries(options.perClass)) {
        const classDirs = readdirSync(join(out, task.name, split)).sort();
        assert.deepEqual(classDirs, task.classes.map((c) => c.name).sort());
        for (const cls of classDirs) {
          assert.match(cls, /^[a-z]+(_[a-z]+)*$/);
          const files = readdirSync(join(out, task.name, split, cls)).sort();
          assert.deepEqual(files, Array.from({ length: n }, (_, i) => `${String(i).padStart(4, '0')}.png`));
        }
      }
    }
    const first = join(out, TASKS[0].name, 'train', TASKS[0].classes[0].name, '0000.png');
    const meta = await sharp(first).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 64);
    assert.equal(meta.height, 64);
    assert.equal(meta.channels, 3);

    const before = readFileSync(first);
    await makeTasks({ ...options, tasks: [TASKS[0]] });
    assert.deepEqual(readFileSync(first), before);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('train and test images of a class differ', async () => {
  const out = mkdtempSync(join(tmpdir(), 'synth-tasks-'));
  try {
    await makeTasks({ out, perClass: { train: 1, test: 1 }, size: 32, tasks: [TASKS[1]] });
    const cls = TASKS[1].classes[0].name;
    const train = await sharp(join(out, TASKS[1].name, 'train', cls, '0000.png')).raw().toBuffer();
    const testImage = await sharp(join(out, TASKS[1].name, 'test', cls, '0000.png')).raw().toBuffer();
    assert.notDeepEqual(train, testImage);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
