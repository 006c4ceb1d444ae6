import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OriginalsBatch } from '../../../services/core/shard.ts';
import { encodePng, type RgbImage } from '../../../services/io/images.ts';
import { checkOriginals, DecodedImageCache, originalsSource } from '../../../services/io/original-images.ts';

/** a fake decoder: a 10×10 image (300 bytes) per path, counting its calls */
function countingDecoder() {
  const calls = new Map<string, number>();
  const decode = async (path: string): Promise<RgbImage> => {
    calls.set(path, (calls.get(path) ?? 0) + 1);
    await new Promise((r) => setImmediate(r));
    return { width: 10, height: 10, data: new Uint8Array(300).fill(path.length) };
  };
  return { calls, decode };
}

test('the cache keeps decoded images up to its byte budget, dropping the least recently used', async () => {
  const { calls, decode } = countingDecoder();
  const cache = new DecodedImageCache(900, decode); // room for three
  for (const p of ['a', 'b', 'c']) await cache.get(p);
  assert.equal(cache.bytes, 900);
  await cache.get('a'); // a is now the most recent
  await cache.get('d'); // evicts b
  assert.equal(cache.size, 3);
  assert.ok(cache.bytes <= 900);
  await cache.get('a');
  await cache.get('c');
  assert.deepEqual([...calls], [['a', 1], ['b', 1], ['c', 1], ['d', 1]], 'a, c and d were hits');
  await cache.get('b');
  assert.equal(calls.get('b'), 2, 'b was evicted and decoded again');
});

test('a file asked for by several rounds at once is decoded once; an image larger than the budget is used, not kept', async () => {
  const { calls, decode } = countingDecoder();
  const cache = new DecodedImageCache(1000, decode);
  const [x, y] = await Promise.all([cache.get('same'), cache.get('same')]);
  assert.equal(x, y);
  assert.equal(calls.get('same'), 1);
  const tiny = new DecodedImageCache(100, decode);
  assert.equal((await tiny.get('big')).width, 10);
  assert.equal(tiny.bytes, 0);
  assert.throws(() => new DecodedImageCache(-1), /≥ 0 bytes/);
});

test('a failed decode is not cached: the next request tries again', async () => {
  let attempts = 0;
  const cache = new DecodedImageCache(1000, async () => {
    attempts++;
    throw new Error('broken file');
  });
  await assert.rejects(cache.get('x'), /broken file/);
  await assert.rejects(cache.get('x'), /broken file/);
  assert.equal(attempts, 2);
});

test('originalsSource gives the decoded originals at their own size and the labels, and names a bad sample index', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'advclip-originals-'));
  try {
    const files = [
      { path: join(dir, 'wide.png'), label: 1, image: { width: 12, height: 5, data: new Uint8Array(12 * 5 * 3).fill(7) } },
      { path: join(dir, 'tall.png'), label: 0, image: { width: 4, height: 9, data: new Uint8Array(4 * 9 * 3).fill(200) } },
    ];
    for (const f of files) await encodePng(f.image, f.path);
    const source = originalsSource(files, new DecodedImageCache());
    const batch = (await source([1, 0, 1])) as OriginalsBatch;
    assert.deepEqual(batch.labels, [0, 1, 0]);
    assert.deepEqual(batch.originals.map((o) => [o.width, o.height]), [[4, 9], [12, 5], [4, 9]]);
    assert.deepEqual(Array.from(batch.originals[1].data), Array.from(files[0].image.data), 'the decoded pixels, not resized');
    await assert.rejects(source([2]), /sample index 2 is outside the training set \(0\.\.1\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('checkOriginals decodes every training image up front: a broken file fails naming it, before any step', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'advclip-originals-'));
  try {
    const good = join(dir, 'good.png');
    const bad = join(dir, 'bad.png');
    await encodePng({ width: 3, height: 3, data: new Uint8Array(27) }, good);
    await writeFile(bad, 'not a png');
    const cache = new DecodedImageCache();
    await checkOriginals([{ path: good, label: 0 }], cache);
    assert.equal(cache.size, 1, 'and keeps what it decoded');
    await assert.rejects(checkOriginals([{ path: good, label: 0 }, { path: bad, label: 1 }], cache), (e: unknown) => e instanceof Error && e.message.includes('bad.png: not a decodable image'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
