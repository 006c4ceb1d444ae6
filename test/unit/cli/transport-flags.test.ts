import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { clusterTokenFrom, natsCredentialsFromEnv } from '../../../services/cli/transport-flags.ts';

const dir = mkdtempSync(join(tmpdir(), 'advclip-secrets-'));
const secretFile = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
};
const ENV = ['NATS_USER', 'NATS_PASSWORD', 'NATS_PASSWORD_FILE', 'ADVCLIP_CLUSTER_TOKEN', 'ADVCLIP_CLUSTER_TOKEN_FILE'] as const;
const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));

describe('secrets from files (mounted Docker/Kubernetes secrets), not argv or env values', () => {
  afterEach(() => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the cluster token from --cluster-token-file or ADVCLIP_CLUSTER_TOKEN_FILE, without the final newline', () => {
    const file = secretFile('token', 'f00d\n');
    assert.equal(clusterTokenFrom({ 'cluster-token-file': file }), 'f00d');
    process.env.ADVCLIP_CLUSTER_TOKEN_FILE = file;
    assert.equal(clusterTokenFrom({}), 'f00d');
    delete process.env.ADVCLIP_CLUSTER_TOKEN_FILE;
    assert.equal(clusterTokenFrom({ 'cluster-token': 'inline' }), 'inline');
    assert.equal(clusterTokenFrom({}), undefined);
  });

  it('refuses a token given both ways, an empty file and a missing one, naming the file', () => {
    const file = secretFile('token2', 'x');
    assert.throws(() => clusterTokenFrom({ 'cluster-token': 'a', 'cluster-token-file': file }), /--cluster-token or --cluster-token-file, not both/);
    assert.throws(() => clusterTokenFrom({ 'cluster-token-file': secretFile('empty', '\n') }), /--cluster-token-file .*empty: the file is empty/);
    assert.throws(() => clusterTokenFrom({ 'cluster-token-file': join(dir, 'absent') }), /--cluster-token-file .*absent: cannot read \(ENOENT\)/);
  });

  it('takes the NATS password from NATS_PASSWORD_FILE when NATS_PASSWORD is unset', () => {
    process.env.NATS_USER = 'advclip-worker';
    process.env.NATS_PASSWORD_FILE = secretFile('nats', 's3cret\n');
    delete process.env.NATS_PASSWORD;
    assert.deepEqual(natsCredentialsFromEnv(), { user: 'advclip-worker', password: 's3cret' });
    delete process.env.NATS_PASSWORD_FILE;
    assert.deepEqual(natsCredentialsFromEnv(), {}, 'a user without a password is no credential');
    process.env.NATS_PASSWORD_FILE = join(dir, 'absent');
    assert.throws(() => natsCredentialsFromEnv(), /NATS_PASSWORD_FILE .*absent: cannot read/);
  });
});
