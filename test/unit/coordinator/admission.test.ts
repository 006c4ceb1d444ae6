/**
 * Admission by identity: an allow-list admits only its identities; a
 * deny-list refuses revoked ones and is read again when it changes; a list
 * that cannot be read fails at start, and later keeps the last good one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Admission, parseIdentityList, RegisterLimiter } from '../../../services/coordinator/admission.ts';

const dir = mkdtempSync(join(tmpdir(), 'advclip-admission-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a list and moves its mtime on, as a later edit would. */
let tick = 1_700_000_000;
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  tick += 10;
  utimesSync(path, tick, tick);
  return path;
};

test('a list is one identity a line; blanks and # comments are ignored', () => {
  assert.deepEqual([...parseIdentityList('# workers\nurn:a\n\n  urn:b  # the GPU box\n')], ['urn:a', 'urn:b']);
});

test('the allow-list admits only its identities; the deny-list refuses revoked ones, re-read when it changes', () => {
  const warnings: string[] = [];
  const denyFile = write('deny', '');
  const admission = new Admission({ allowFile: write('allow', 'urn:a\nurn:b\n'), denyFile, warn: (m) => warnings.push(m) });
  admission.check('urn:a');
  assert.throws(() => admission.check('urn:c'), (e: Error & { code?: string }) => e.code === 'FAILED_PRECONDITION' && /worker identity "urn:c" is not in the allow-list .*allow: not admitted/.test(e.message));
  write('deny', 'urn:b\n');
  assert.throws(() => admission.check('urn:b'), /worker identity "urn:b" is revoked \(listed in .*deny\): not admitted/);
  admission.check('urn:a');
  rmSync(denyFile);
  assert.throws(() => admission.check('urn:b'), /revoked/, 'a deny-list gone bad keeps the last one read');
  assert.match(warnings[0], /deny-list .*keeping the last one read \(1 identities\)/);
});

test('a list that cannot be read fails at start, naming it', () => {
  assert.throws(() => new Admission({ denyFile: join(dir, 'missing'), warn: () => undefined }), (e: Error & { code?: string }) => e.code === 'NOT_FOUND' && /identity list .*missing cannot be read/.test(e.message));
});

test('Register attempts past the limit in the window are refused per identity, saying when to retry; the window slides', () => {
  const limiter = new RegisterLimiter({ attempts: 3, windowMs: 60_000 });
  for (const t of [0, 1_000, 2_000]) limiter.attempt('urn:a', t);
  assert.throws(() => limiter.attempt('urn:a', 3_000), (e: Error & { code?: string }) => e.code === 'RESOURCE_EXHAUSTED' && /worker identity "urn:a" made 4 Register attempts in 60 s \(limit 3\): retry in 57 s/.test(e.message));
  limiter.attempt('urn:b', 3_000);
  assert.throws(() => limiter.attempt('urn:a', 59_000), /made 5 Register attempts/);
  limiter.attempt('urn:a', 125_000);
});
