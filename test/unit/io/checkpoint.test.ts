import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdvclipError } from '../../../services/core/errors.ts';
import { initLora } from '../../../services/core/lora.ts';
import { initTrainState, type TrainState } from '../../../services/core/trainer.ts';
import {
  checkpointFileName,
  decodeCheckpoint,
  encodeCheckpoint,
  listCheckpoints,
  loadNewestCheckpoint,
  runHash,
  writeCheckpoint,
} from '../../../services/io/checkpoint.ts';
import { tinyConfig, tinySpec } from '../core/tiny-task.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-ckpt-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const spec = tinySpec({ optimizer: 'adamw' });
const initial = initLora(tinyConfig, spec.lora, spec.seed);
const hash = runHash({ spec, modelSha256: 'm'.repeat(64), trainSetSha256: 't'.repeat(64) });
const expect = { runHash: hash, initial };

/** A state that looks trained: every array filled with distinct values, some not representable in fewer bits. */
function trainedState(step: number): TrainState {
  const s = initTrainState(spec, initial);
  const fill = (x: Float32Array, k: number) => x.forEach((_, j) => (x[j] = Math.sin(step * 1000 + k * 97 + j) / 3));
  const lora = { ...initial, a: initial.a.map((t) => ({ shape: t.shape, data: Float32Array.from(t.data) })), b: initial.b.map((t) => ({ shape: t.shape, data: new Float32Array(t.data.length) })) };
  lora.a.forEach((t, i) => fill(t.data, i));
  lora.b.forEach((t, i) => fill(t.data, 100 + i));
  s.optimizer.m.forEach((m, j) => fill(m, 200 + j));
  s.optimizer.v.forEach((v, j) => {
    fill(v, 300 + j);
    v.forEach((x, k) => (v[k] = Math.abs(x)));
  });
  const delta = new Float32Array(tinyConfig.vision.imageSize ** 2 * 3);
  fill(delta, 400);
  return { ...s, step, version: 2 * step + 1, lora, delta, deltaEpoch: 3, calibratedLrDelta: Math.PI / 255 + step };
}

const bitsOf = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

function assertSameState(actual: TrainState, wanted: TrainState): void {
  assert.equal(actual.step, wanted.step);
  assert.equal(actual.version, wanted.version);
  assert.equal(actual.deltaEpoch, wanted.deltaEpoch);
  assert.ok(Object.is(actual.calibratedLrDelta, wanted.calibratedLrDelta), `calibrated η_δ ${actual.calibratedLrDelta} vs ${wanted.calibratedLrDelta}`);
  assert.equal(actual.optimizer.name, wanted.optimizer.name);
  wanted.lora.a.forEach((t, i) => assert.ok(bitsOf(actual.lora.a[i].data).equals(bitsOf(t.data)), `A ${i}`));
  wanted.lora.b.forEach((t, i) => assert.ok(bitsOf(actual.lora.b[i].data).equals(bitsOf(t.data)), `B ${i}`));
  wanted.optimizer.m.forEach((m, j) => assert.ok(bitsOf(actual.optimizer.m[j]).equals(bitsOf(m)), `m ${j}`));
  wanted.optimizer.v.forEach((v, j) => assert.ok(bitsOf(actual.optimizer.v[j]).equals(bitsOf(v)), `v ${j}`));
  assert.ok(bitsOf(actual.delta!).equals(bitsOf(wanted.delta!)), 'δ');
  assert.deepEqual(actual.lora.sites, wanted.lora.sites);
}

const isCode = (code: string, pattern: RegExp) => (e: unknown) => e instanceof AdvclipError && e.code === code && pattern.test(e.message);

test('round trip keeps every bit: adapters, AdamW moments, δ and its epoch, the calibrated η_δ, step, version', () => {
  const state = trainedState(7);
  assertSameState(decodeCheckpoint(encodeCheckpoint(state, hash), 'x', expect), state);
  const fresh = initTrainState(tinySpec({ optimizer: 'sgd' }), initial);
  const sgdHash = runHash({ spec: tinySpec({ optimizer: 'sgd' }), modelSha256: '', trainSetSha256: '' });
  const back = decodeCheckpoint(encodeCheckpoint(fresh, sgdHash), 'x', { runHash: sgdHash, initial });
  assert.equal(back.delta, null, 'no δ yet stays no δ');
  assert.equal(back.calibratedLrDelta, null, 'no calibration yet stays none');
  assert.deepEqual(back.optimizer, { name: 'sgd', m: [], v: [] });
});

test('a flipped byte anywhere in the data, a truncated file or an edited checksum is DATA_LOSS naming the file', () => {
  const bytes = encodeCheckpoint(trainedState(3), hash);
  const flipped = Uint8Array.from(bytes);
  flipped[bytes.length - 5] ^= 0x40;
  assert.throws(() => decodeCheckpoint(flipped, 'c.safetensors', expect), isCode('DATA_LOSS', /c\.safetensors: checksum mismatch/));
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 100), 'c.safetensors', expect), isCode('DATA_LOSS', /c\.safetensors.*truncated|c\.safetensors: tensors cover/));
  const text = Buffer.from(bytes).toString('latin1');
  const stored = /"sha256":"([0-9a-f]{64})"/.exec(text)![1];
  const edited = Buffer.from(text.replace(stored, stored.replace(/^./, (c) => (c === '0' ? '1' : '0'))), 'latin1');
  assert.throws(() => decodeCheckpoint(edited, 'c.safetensors', expect), isCode('DATA_LOSS', /checksum mismatch/));
});

test('a sound checkpoint of another run configuration is refused with FAILED_PRECONDITION', () => {
  const other = runHash({ spec: tinySpec({ optimizer: 'adamw', iters: 11 }), modelSha256: 'm'.repeat(64), trainSetSha256: 't'.repeat(64) });
  assert.notEqual(other, hash, 'iters is part of the run (it sets the cosine schedule)');
  assert.equal(runHash({ spec, modelSha256: 'm'.repeat(64), trainSetSha256: 't'.repeat(64) }), hash, 'the hash is stable');
  assert.throws(() => decodeCheckpoint(encodeCheckpoint(trainedState(2), other), 'c.safetensors', expect), isCode('FAILED_PRECONDITION', /c\.safetensors: checkpoint of a different run configuration/));
});

test('the directory keeps the newest 3; a corrupt newest is skipped with a warning naming it and the previous one loads', async () => {
  const dir = join(tmp, 'keep');
  for (const step of [2, 4, 6, 8]) await writeCheckpoint(dir, trainedState(step), hash, 3);
  assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [8, 6, 4]);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('tmp')), [], 'no temp files left');
  const newest = join(dir, checkpointFileName(8));
  const bytes = readFileSync(newest);
  bytes[bytes.length - 1] ^= 0xff;
  writeFileSync(newest, bytes);
  const truncated = join(dir, checkpointFileName(9));
  writeFileSync(truncated, readFileSync(join(dir, checkpointFileName(6))).subarray(0, 100));
  const warnings: string[] = [];
  const loaded = await loadNewestCheckpoint(dir, expect, (m) => warnings.push(m));
  assert.equal(loaded?.path, join(dir, checkpointFileName(6)));
  assertSameState(loaded!.state, trainedState(6));
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], new RegExp(`skipping corrupt checkpoint ${truncated}`));
  assert.match(warnings[1], new RegExp(`skipping corrupt checkpoint ${newest}: .*checksum mismatch`));
});

test('no directory or only corrupt files: nothing to resume; another run’s checkpoint throws instead of being skipped', async () => {
  assert.equal(await loadNewestCheckpoint(join(tmp, 'absent'), expect, assert.fail), null);
  const dir = join(tmp, 'junk');
  await writeCheckpoint(dir, trainedState(1), hash);
  writeFileSync(join(dir, checkpointFileName(1)), 'not a checkpoint');
  assert.equal(await loadNewestCheckpoint(dir, expect, () => undefined), null);
  const otherDir = join(tmp, 'other');
  await writeCheckpoint(otherDir, trainedState(1), 'f'.repeat(64));
  await assert.rejects(loadNewestCheckpoint(otherDir, expect, () => undefined), isCode('FAILED_PRECONDITION', /different run configuration/));
});
