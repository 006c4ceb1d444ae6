/**
 * unreadableFile: a file that is missing and one the process may not read
 * are different failures for an operator (a missing Secret against a wrong
 * uid, group or mode), so they get different codes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unreadableFile } from '../../../services/core/errors.ts';

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

test('a missing file is NOT_FOUND, with the cause in the message', () => {
  const e = unreadableFile('TLS file /certs/ca.crt cannot be read', errno('ENOENT', "ENOENT: no such file or directory, open '/certs/ca.crt'"));
  assert.equal(e.code, 'NOT_FOUND');
  assert.match(e.message, /^TLS file \/certs\/ca\.crt cannot be read: ENOENT/);
});

test('a file the process may not read is FAILED_PRECONDITION and names the uid and groups to check against', () => {
  const e = unreadableFile('TLS file /certs/ca.crt cannot be read', errno('EACCES', "EACCES: permission denied, open '/certs/ca.crt'"));
  assert.equal(e.code, 'FAILED_PRECONDITION');
  assert.match(e.message, /cannot be read: EACCES: permission denied.*\(uid \d+, groups [\d,]*: check the file's owner, group and mode\)/);
});
