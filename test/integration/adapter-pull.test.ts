/**
 * `advclip adapter pull` against a real nats-server on loopback: what a
 * coordinator published comes back as a PEFT adapter directory that loads.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initLora, type LoraWeights } from '../../services/core/lora.ts';
import { readClipConfig } from '../../services/io/hf-config.ts';
import { loadAdapter } from '../../services/io/peft.ts';
import { encodeAdapterBlob } from '../../services/protocol/adapter-blob.ts';
import { AdapterPublisher } from '../../services/protocol/adapter-store.ts';
import { connectNats, isNatsUnavailable, type NatsLink } from '../../services/protocol/nats-connection.ts';
import { startNatsServer, type NatsServer } from '../../services/protocol/nats-server.ts';
import { runCli } from '../helpers/cli.ts';

const USER = 'advclip';
const PASSWORD = 'pull-test-secret';
const config = await readClipConfig(new URL('../fixtures/tiny-clip-f32/config.json', import.meta.url).pathname);
const loraConfig = { rank: 2, alpha: 4, rslora: false, dropout: 0.1, targets: ['q_proj', 'v_proj'], towers: ['vision', 'text'], layers: null, init: 'kaiming-uniform' } as const;

/** Version v: the seed-v initial A, and B filled with v so versions differ in both factors. */
function adapterOf(v: number): LoraWeights {
  const lora = initLora(config, loraConfig, v);
  return { ...lora, b: lora.b.map((t) => ({ shape: t.shape, data: new Float32Array(t.data.length).fill(v / 10) })) };
}

let server: NatsServer;
let link: NatsLink;
let publisher: AdapterPublisher;
const dirs: string[] = [];
const outDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'advclip-pull-'));
  dirs.push(d);
  return join(d, 'adapter');
};
const env = { NATS_USER: USER, NATS_PASSWORD: PASSWORD };
const pull = (args: string[], over: Record<string, string> = env) => runCli(['adapter', 'pull', '--nats', server.url, ...args], { env: over, timeoutMs: 60_000 });

describe('advclip adapter pull (loopback nats-server)', () => {
  before(async () => {
    server = await startNatsServer({ user: USER, password: PASSWORD });
    const result = await connectNats({ servers: server.url, user: USER, password: PASSWORD, name: 'test-coordinator' });
    if (isNatsUnavailable(result)) throw result.error;
    link = result;
    publisher = await AdapterPublisher.open(link, { keep: 3 });
  });
  after(async () => {
    await publisher?.close();
    await link?.close();
    await server?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('says there is nothing to pull before a run published a version', async () => {
    const r = await pull(['--out', outDir()]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no adapter version on NATS/);
  });

  it('writes the newest version as a PEFT adapter that loads with the run\'s LoRA config', async () => {
    for (let v = 1; v <= 4; v++) await publisher.publish(v, encodeAdapterBlob(adapterOf(v), v).bytes);
    const out = outDir();
    const r = await pull(['--out', out, '--base-model', 'openai/clip-vit-base-patch32', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    const bytes = readFileSync(join(out, 'adapter_model.safetensors'));
    assert.deepEqual(result, { out, version: 4, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, rank: 2 });
    assert.deepEqual(Buffer.from(encodeAdapterBlob(adapterOf(4), 4).bytes), bytes, 'the published bytes, verbatim');
    const adapterConfig = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    assert.deepEqual([adapterConfig.r, adapterConfig.lora_alpha, adapterConfig.lora_dropout, adapterConfig.target_modules, adapterConfig.base_model_name_or_path], [2, 4, 0.1, ['q_proj', 'v_proj'], 'openai/clip-vit-base-patch32']);
    const loaded = await loadAdapter(out, config);
    const want = adapterOf(4);
    assert.deepEqual(loaded.a.map((t) => t.data), want.a.map((t) => t.data));
    assert.deepEqual(loaded.b.map((t) => t.data), want.b.map((t) => t.data));
  });

  it('--version picks one NATS still keeps, and names one it does not', async () => {
    const out = outDir();
    const r = await pull(['--out', out, '--version', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).version, 3);
    assert.deepEqual((await loadAdapter(out, config)).b[0].data, adapterOf(3).b[0].data);
    const gone = await pull(['--out', outDir(), '--version', '1']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /adapter version 1 is no longer kept on NATS/);
  });

  it('does not overwrite an adapter without --force', async () => {
    const out = outDir();
    assert.equal((await pull(['--out', out, '--version', '2'])).code, 0);
    const again = await pull(['--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds adapter_model\.safetensors; pass --force/);
    assert.equal(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).r, 2);
    assert.equal((await pull(['--out', out, '--force', '--json'])).code, 0);
  });

  it('refused credentials and a missing sub-command are one clear line each', async () => {
    const refused = await pull(['--out', outDir()], { NATS_USER: USER, NATS_PASSWORD: 'wrong' });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused our credentials/);
    const bare = await runCli(['adapter', '--nats', server.url, '--out', outDir()]);
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /give a sub-command: pull/);
  });
});
