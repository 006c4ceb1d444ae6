import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { AdvclipError } from '../../../services/core/errors.ts';
import { hubOptionsFromEnv, parseHubModelRef, repoCacheDir, resolveHubModel, stderrProgress, type HubOptions } from '../../../services/io/hub.ts';
import { loadClipModelDir } from '../../../services/io/model-dir.ts';
import { modelDirSha256 } from '../../../services/io/model-hash.ts';
import { COMMIT, FakeHub, FILES, fixture, REPO, TOKEN } from '../../helpers/fake-hub.ts';

const hub = new FakeHub();
let cache = '';
const opts = (over: Partial<HubOptions> = {}): HubOptions => ({ endpoint: hub.url, cacheDir: cache, offline: false, ...over });
const ref = { repo: REPO, revision: 'main' };
const repoDir = () => repoCacheDir(cache, REPO);
const blobs = () => readdirSync(join(repoDir(), 'blobs'));

async function rejectsWith(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (error: unknown) => {
    assert.ok(error instanceof AdvclipError, `an AdvclipError, got ${error}`);
    assert.equal(error.code, code, error.message);
    for (const re of patterns) assert.match(error.message, re);
    return true;
  });
}

describe('Hugging Face Hub models (loopback Hub)', () => {
  before(() => hub.start());
  after(() => hub.close());
  beforeEach(() => {
    cache = mkdtempSync(join(tmpdir(), 'advclip-hub-'));
    hub.faults.clear();
    hub.requireToken = false;
    hub.requests = [];
  });
  afterEach(() => rmSync(cache, { recursive: true, force: true }));

  it('downloads a repo into the huggingface_hub cache layout; the model equals the local directory', async () => {
    const progress: Array<[string, number, number]> = [];
    const snapshot = await resolveHubModel(ref, opts({ progress: (f, d, t) => progress.push([f, d, t]) }));
    assert.equal(snapshot, join(repoDir(), 'snapshots', COMMIT));
    assert.equal(readFileSync(join(repoDir(), 'refs', 'main'), 'utf8'), COMMIT);
    for (const file of FILES) {
      assert.deepEqual(readFileSync(join(snapshot, file)), hub.files.get(file), file);
      assert.equal(readlinkSync(join(snapshot, file)), join('..', '..', 'blobs', hub.etagOf(file)), `${file} links to its blob`);
    }
    assert.deepEqual(blobs().sort(), FILES.map((f) => hub.etagOf(f)).sort(), 'no temporary file left behind');
    for (const file of FILES) {
      const last = progress.filter(([f]) => f === file).at(-1);
      assert.deepEqual(last, [file, hub.files.get(file)!.length, hub.files.get(file)!.length], `${file} progress ends at its size`);
    }

    const [fromHub, local] = [await loadClipModelDir(REPO, opts()), await loadClipModelDir(fixture)];
    assert.deepEqual(fromHub.config, local.config);
    assert.deepEqual([...fromHub.weights.keys()], [...local.weights.keys()]);
    for (const [name, t] of local.weights) assert.deepEqual(fromHub.weights.get(name)!.data, t.data, name);
    assert.deepEqual(fromHub.preprocess, local.preprocess);
    assert.equal((await fromHub.loadTokenizer()).vocabSize, (await local.loadTokenizer()).vocabSize);
  });

  it('a second run reads the cache: offline with the Hub gone, and online without downloading again', async () => {
    const first = await resolveHubModel(ref, opts());
    hub.requests = [];
    assert.equal(await resolveHubModel(ref, opts()), first);
    assert.ok(!hub.requests.some((r) => r.startsWith('/cdn/')), `no blob fetched again: ${hub.requests.join(', ')}`);

    const closed = opts({ endpoint: 'http://127.0.0.1:9', offline: true });
    assert.equal(await resolveHubModel(ref, closed), first);
    assert.equal(await resolveHubModel({ repo: REPO, revision: COMMIT }, closed), first, 'a commit id needs no ref');
    assert.equal(await modelDirSha256(first), await modelDirSha256(fixture), 'same files, same model hash');
    const warnings: string[] = [];
    assert.equal(await resolveHubModel(ref, opts({ endpoint: 'http://127.0.0.1:9', warn: (m) => warnings.push(m) })), first, 'an unreachable Hub falls back to the cache');
    assert.match(warnings.join('\n'), /unreachable.*cached snapshot/);
  });

  it('offline with an empty cache says what is missing and where it looked', async () => {
    await rejectsWith(resolveHubModel(ref, opts({ offline: true })), 'NOT_FOUND', /tiny\/clip-f32@main/, /HF_HUB_OFFLINE=1/, new RegExp(cache));
    assert.deepEqual(hub.requests, [], 'offline sends nothing');
  });

  it('a truncated download is discarded, names the repo and file, and a retry succeeds', async () => {
    hub.faults.set('model.safetensors', 'truncate');
    await rejectsWith(resolveHubModel(ref, opts()), 'DATA_LOSS', /tiny\/clip-f32@main: model\.safetensors/, /\d+ of 257764 bytes/);
    assert.ok(!blobs().includes(hub.etagOf('model.safetensors')), 'no blob of the broken file');
    assert.ok(blobs().every((b) => !b.endsWith('.incomplete')), 'no partial file left');
    await rejectsWith(resolveHubModel(ref, opts({ offline: true })), 'NOT_FOUND', /no complete snapshot/);
    hub.faults.clear();
    assert.deepEqual(readFileSync(join(await resolveHubModel(ref, opts()), 'model.safetensors')), hub.files.get('model.safetensors'));
  });

  it('a download whose bytes do not match the etag (sha256, git sha1) is discarded', async () => {
    hub.faults.set('model.safetensors', 'corrupt');
    await rejectsWith(resolveHubModel(ref, opts()), 'DATA_LOSS', /model\.safetensors: sha256 [0-9a-f]{64} does not match the etag/, /discarded/);
    hub.faults.clear();
    hub.faults.set('tokenizer.json', 'corrupt');
    await rejectsWith(resolveHubModel(ref, opts()), 'DATA_LOSS', /tokenizer\.json: git blob sha1 .* does not match/);
    assert.ok(!blobs().includes(hub.etagOf('tokenizer.json')));
  });

  it('404: an unknown repo, revision or file names what was asked for', async () => {
    await rejectsWith(resolveHubModel({ repo: 'tiny/nope', revision: 'main' }, opts()), 'NOT_FOUND', /tiny\/nope@main/, /404/);
    await rejectsWith(resolveHubModel({ repo: REPO, revision: 'v9' }, opts()), 'NOT_FOUND', /tiny\/clip-f32@v9/);
    hub.faults.set('model.safetensors', '404');
    await rejectsWith(resolveHubModel(ref, opts()), 'NOT_FOUND', /tiny\/clip-f32@main: model\.safetensors/);
  });

  it('a repo without safetensors weights says what it has and what to do', async () => {
    hub.hidden.add('model.safetensors');
    hub.extraListed.push('pytorch_model.bin', 'tf_model.h5');
    try {
      await rejectsWith(resolveHubModel(ref, opts()), 'NOT_FOUND', /tiny\/clip-f32@main: no model\.safetensors .*it has pytorch_model\.bin, tf_model\.h5: convert them to safetensors, or .*@refs\/pr\/N/);
      assert.ok(await resolveHubModel(ref, opts({ offline: true })).catch(() => null) === null, 'nothing complete was cached');
    } finally {
      hub.hidden.clear();
      hub.extraListed.length = 0;
    }
  });

  it('401: says to set HF_TOKEN; with the token it downloads', async () => {
    hub.requireToken = true;
    await rejectsWith(resolveHubModel(ref, opts()), 'FAILED_PRECONDITION', /tiny\/clip-f32@main/, /401/, /HF_TOKEN/);
    hub.requireToken = false;
    hub.faults.set('model.safetensors', '401'); // a gated file: the repo answers, the file does not
    await rejectsWith(resolveHubModel(ref, opts()), 'FAILED_PRECONDITION', /tiny\/clip-f32@main: model\.safetensors from http:\/\/127\.0\.0\.1:\d+: HTTP 401/, /set HF_TOKEN/);
    hub.faults.clear();
    hub.requireToken = true;
    await rejectsWith(resolveHubModel(ref, opts({ token: 'not-a-token' })), 'INVALID_ARGUMENT', /HF_TOKEN is not a Hugging Face token/);
    assert.ok(await resolveHubModel(ref, opts({ token: TOKEN })));
  });

  it('loadClipModelDir still says a missing local directory is missing; a missing one that reads as a repo id gets both readings', async () => {
    await rejectsWith(loadClipModelDir(join(cache, 'nothing-here')), 'NOT_FOUND', /model directory does not exist/);
    await rejectsWith(loadClipModelDir('models/clip-smal', opts()), 'NOT_FOUND', /^models\/clip-smal: no such local directory, and as a Hugging Face Hub repo id: models\/clip-smal@main: .*404/);
  });
});

describe('Hub repo ids, the environment and progress', () => {
  it('progress: a bar redrawn in place on a terminal, a JSON line per file elsewhere', () => {
    const lines = (isTTY: boolean) => {
      const out: string[] = [];
      const report = stderrProgress({ isTTY, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream);
      report('model.safetensors', 0, 2_000_000);
      report('model.safetensors', 2_000_000, 2_000_000);
      return out;
    };
    assert.deepEqual(lines(true), ['\radvclip: model.safetensors 0.0/2.0 MB 0%', '\radvclip: model.safetensors 2.0/2.0 MB 100%\n']);
    const json = lines(false).map((l) => JSON.parse(l));
    assert.deepEqual(json.map((j) => [j.level, j.msg, j.bytes, j.total]), [['info', 'download model.safetensors', 0, 2_000_000], ['info', 'download model.safetensors', 2_000_000, 2_000_000]]);
  });

  it('reads owner/name[@revision] and nothing path-like', () => {
    assert.deepEqual(parseHubModelRef('openai/clip-vit-base-patch32'), { repo: 'openai/clip-vit-base-patch32', revision: 'main' });
    assert.deepEqual(parseHubModelRef('openai/clip-vit-base-patch16@v1.0'), { repo: 'openai/clip-vit-base-patch16', revision: 'v1.0' });
    assert.deepEqual(parseHubModelRef(`a/b@${COMMIT}`), { repo: 'a/b', revision: COMMIT });
    assert.deepEqual(parseHubModelRef('a/b@refs/pr/3'), { repo: 'a/b', revision: 'refs/pr/3' });
    for (const notHub of ['/models/clip', './models/clip', 'models/clip/x', '../a', 'a/..', 'clip', 'a/b@', 'a/b@../x', 'a/b c']) {
      assert.equal(parseHubModelRef(notHub), null, notHub);
    }
  });

  it('maps HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE as huggingface_hub does', async () => {
    const home = mkdtempSync(join(tmpdir(), 'advclip-hfhome-'));
    try {
      const base = await hubOptionsFromEnv({ HOME: home, HF_HOME: home });
      assert.deepEqual([base.endpoint, base.cacheDir, base.offline, base.token], ['https://huggingface.co', join(home, 'hub'), false, undefined]);
      const set = await hubOptionsFromEnv({ HF_HOME: home, HF_ENDPOINT: 'http://mirror:8080/', HF_TOKEN: TOKEN, HF_HUB_CACHE: '/c', HF_HUB_OFFLINE: '1' });
      assert.deepEqual([set.endpoint, set.cacheDir, set.offline, set.token], ['http://mirror:8080', '/c', true, TOKEN]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
