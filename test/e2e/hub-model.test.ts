/**
 * `--model owner/name` on the command line: a command fetches the model from
 * the Hub (a loopback stand-in, HF_ENDPOINT) into HF_HOME and computes the
 * same thing as with the local directory; offline it runs from the cache.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { FakeHub, fixture, REPO } from '../helpers/fake-hub.ts';
import { TINY } from '../integration/cluster-harness.ts';

describe('advclip embed --model <Hub repo id>', () => {
  const hub = new FakeHub();
  const hfHome = mkdtempSync(join(tmpdir(), 'advclip-hf-home-'));
  const embed = (model: string, env: Record<string, string> = {}) =>
    runCli(['embed', '--model', model, '--image', join(fixture, 'image-rgb.png'), '--text', 'a photo of a red square', '--json'], { env: { HF_HOME: hfHome, HF_ENDPOINT: hub.url, HF_TOKEN: '', ...env } });
  before(() => hub.start());
  after(async () => {
    await hub.close();
    rmSync(hfHome, { recursive: true, force: true });
  });

  it('downloads the repo and embeds exactly as from the local directory; then runs offline from the cache', async () => {
    const local = await embed(fixture);
    assert.equal(local.code, 0, local.stderr);
    const fromHub = await embed(REPO);
    assert.equal(fromHub.code, 0, fromHub.stderr);
    assert.deepEqual(JSON.parse(fromHub.stdout), JSON.parse(local.stdout));
    assert.match(fromHub.stderr, /"msg":"download model\.safetensors"/, 'progress on stderr');
    await hub.close();
    const offline = await embed(`${REPO}@main`, { HF_HUB_OFFLINE: '1' });
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual(JSON.parse(offline.stdout), JSON.parse(local.stdout));
    await hub.start();
  });

  it('advclip cluster: the coordinator passes the repo id on, its workers fetch it too; the adapter is the local directory\'s', async () => {
    const out = mkdtempSync(join(tmpdir(), 'advclip-hub-cluster-'));
    try {
      const args = (model: string) => TINY.map((a, i) => (TINY[i - 1] === '--model' ? model : a));
      const local = await runCli(['train', ...args(fixture), '--out', join(out, 'local'), '--json']);
      assert.equal(local.code, 0, local.stderr);
      const cluster = await runCli(['cluster', '--workers', '1', ...args(REPO), '--out', join(out, 'hub'), '--metrics-port', '0', '--json'], {
        env: { HF_HOME: hfHome, HF_ENDPOINT: hub.url, HF_TOKEN: '' },
      });
      assert.equal(cluster.code, 0, cluster.stderr);
      const weights = (dir: string) => readFileSync(join(out, dir, 'adapter_model.safetensors'));
      assert.ok(weights('hub').equals(weights('local')), 'same adapter from the Hub model as from the directory');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a refused download is one error line naming the repo and file, exit 1', async () => {
    hub.faults.set('config.json', '401');
    const r = await embed(REPO, { HF_HOME: mkdtempSync(join(tmpdir(), 'advclip-hf-empty-')) });
    hub.faults.clear();
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /tiny\/clip-f32@main: config\.json from http:\/\/127\.0\.0\.1:\d+: HTTP 401, not authorised; set HF_TOKEN/);
    assert.ok(r.stderr.trim().split('\n').length <= 3, r.stderr);
  });
});
