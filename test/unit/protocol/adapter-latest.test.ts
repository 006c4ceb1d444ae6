/**
 * The value of `adapter.latest`: a JSON header line, then the blob when it
 * fits in one NATS message; otherwise a header naming the object. Anything
 * else is DATA_LOSS, saying what was wrong.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdvclipError } from '../../../services/core/errors.ts';
import { encodeInlineLatest, encodeObjectLatest, parseLatest } from '../../../services/protocol/adapter-latest.ts';

const SHA = 'ab'.repeat(32);
const blob = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
const dataLoss = (pattern: RegExp) => (e: unknown) => e instanceof AdvclipError && e.code === 'DATA_LOSS' && pattern.test(e.message);
const text = (s: string) => new TextEncoder().encode(s);

test('an inline value carries the blob after its header line and reads back byte for byte', () => {
  const value = encodeInlineLatest(7, SHA, blob, 1 << 20)!;
  assert.equal(new TextDecoder().decode(value.subarray(0, value.indexOf(0x0a))), `{"version":7,"sha256":"${SHA}","inline":1000}`);
  const latest = parseLatest(value);
  assert.ok('inline' in latest);
  assert.deepEqual({ version: latest.version, sha256: latest.sha256 }, { version: 7, sha256: SHA });
  assert.deepEqual(latest.inline, blob);
});

test('a blob goes inline only while the whole value fits in max_payload', () => {
  const size = encodeInlineLatest(7, SHA, blob, 1 << 20)!.byteLength;
  assert.equal(encodeInlineLatest(7, SHA, blob, size)?.byteLength, size, 'exactly max_payload fits');
  assert.equal(encodeInlineLatest(7, SHA, blob, size - 1), undefined, 'one byte over does not');
});

test('an object value names the object and reads back as today’s pointer JSON', () => {
  const value = encodeObjectLatest(7, SHA, 'adapter-7');
  assert.deepEqual(JSON.parse(new TextDecoder().decode(value)), { version: 7, sha256: SHA, object: 'adapter-7' });
  assert.deepEqual(parseLatest(value), { version: 7, sha256: SHA, object: 'adapter-7' });
});

test('malformed values are DATA_LOSS naming what is wrong', () => {
  assert.throws(() => parseLatest(text('not json')), dataLoss(/adapter\.latest is not JSON: not json/));
  assert.throws(() => parseLatest(text('not json\nbytes')), dataLoss(/adapter\.latest is not JSON: not json$/));
  assert.throws(() => parseLatest(text(JSON.stringify({ version: 2, sha256: 'nope', object: '' }))), dataLoss(/adapter\.latest is not \{version, sha256, object\}/));
  assert.throws(() => parseLatest(text(JSON.stringify({ version: 0, sha256: SHA, object: 'adapter-0' }))), dataLoss(/is not \{version, sha256, object\}/));
  assert.throws(() => parseLatest(text(`${JSON.stringify({ version: 2, sha256: SHA, object: 'adapter-2' })}\nextra`)), dataLoss(/is not \{version, sha256, object\}/), 'an object header has no blob after it');
  assert.throws(() => parseLatest(text(JSON.stringify({ version: 2, sha256: SHA, inline: 3 }))), dataLoss(/is not \{version, sha256, object\} nor \{version, sha256, inline\}/), 'an inline header needs its line break');
  const value = encodeInlineLatest(7, SHA, blob, 1 << 20)!;
  assert.throws(() => parseLatest(value.subarray(0, value.byteLength - 1)), dataLoss(/version 7 carries 999 bytes, its header says 1000/));
});
