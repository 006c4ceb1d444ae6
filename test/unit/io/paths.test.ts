import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import { realDirectory, resolveInside } from '../../../services/io/paths.ts';

let tmp: string;
let root: string;
before(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'advclip-paths-')));
  root = join(tmp, 'data');
  await mkdir(join(root, 'a'), { recursive: true });
  await writeFile(join(root, 'a', 'x.png'), 'x');
  await writeFile(join(tmp, 'outside.png'), 'o');
  await symlink(join(tmp, 'outside.png'), join(root, 'out-link.png'));
  await symlink(join(root, 'a'), join(root, 'in-link'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const isError = (code: string, ...texts: string[]) => (e: unknown) =>
  e instanceof AdvclipError && e.code === code && texts.every((t) => e.message.includes(t));

describe('resolveInside', () => {
  test('returns the real path of a file inside the root, through symlinks that stay inside', async () => {
    assert.equal(await resolveInside(root, 'a/x.png', 'split.json'), join(root, 'a/x.png'));
    assert.equal(await resolveInside(root, './a/../a/x.png', 'split.json'), join(root, 'a/x.png'));
    assert.equal(await resolveInside(root, 'in-link/x.png', 'split.json'), join(root, 'a/x.png'));
  });

  test('rejects absolute paths, .. escapes and symlinks leading out, naming where they came from', async () => {
    for (const p of [join(tmp, 'outside.png'), '../outside.png', 'a/../../outside.png', 'out-link.png', '', '.', 'a/..']) {
      await assert.rejects(resolveInside(root, p, 'split.json: train[3]'), isError('INVALID_ARGUMENT', 'outside the data root', 'train[3]'), p);
    }
  });

  test('any path with more leading ".." than depth is rejected without touching the disk', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 3 }), fc.integer({ min: 1, max: 3 }), async (names, extra) => {
        const rel = [...names.map(() => '..'), ...Array.from({ length: extra }, () => '..'), ...names, 'x.png'].join('/');
        await assert.rejects(resolveInside(root, rel, 'f'), isError('INVALID_ARGUMENT', 'outside the data root'));
      }),
      { numRuns: 50 },
    );
  });

  test('a missing file is NOT_FOUND', async () => {
    await assert.rejects(resolveInside(root, 'a/missing.png', 'split.json'), isError('NOT_FOUND', 'missing.png', 'split.json'));
  });
});

describe('realDirectory', () => {
  test('resolves symlinks; a file is not a directory; a missing path is NOT_FOUND', async () => {
    assert.equal(await realDirectory(join(root, 'in-link'), 'data root'), join(root, 'a'));
    await assert.rejects(realDirectory(join(root, 'a/x.png'), 'data root'), isError('INVALID_ARGUMENT', 'not a directory'));
    await assert.rejects(realDirectory(join(tmp, 'nope'), 'data root'), isError('NOT_FOUND', 'nope', 'data root'));
  });
});
