/**
 * A worker holds an adapter version only when its bytes have the SHA-256
 * the task names and fit the run's LoRA sites; otherwise the task is
 * refused (FAILED_PRECONDITION, sent back as a TaskError) naming why, and
 * the coordinator reassigns it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdvclipError } from '../../../services/core/errors.ts';
import { defaultLoraConfig, initLora } from '../../../services/core/lora.ts';
import { readClipConfig } from '../../../services/io/hf-config.ts';
import { encodeAdapterBlob, type AdapterBlob } from '../../../services/protocol/adapter-blob.ts';
import { sha256Hex } from '../../../services/protocol/adapter-store.ts';
import { AdapterHolder } from '../../../services/worker/adapter-holder.ts';

const model = await readClipConfig(new URL('../../fixtures/tiny-clip-f32/config.json', import.meta.url).pathname);
const initial = initLora(model, defaultLoraConfig, 1);
const other = initLora(model, { ...defaultLoraConfig, rank: 3 }, 1);

function holder(serve: (version: number) => AdapterBlob) {
  const warnings: string[] = [];
  const h = new AdapterHolder({ initial, subscriber: null, getAdapter: async (v) => serve(v), warn: (m) => warnings.push(m) });
  return { h, warnings };
}

const refused = (pattern: RegExp) => (e: unknown) => e instanceof AdvclipError && e.code === 'FAILED_PRECONDITION' && /cannot hold a verified adapter version 1/.test(e.message) && pattern.test(e.message);

test('a blob whose SHA-256 is not the task’s is refused', async () => {
  const blob = encodeAdapterBlob(initial, 1);
  const { h } = holder(() => ({ ...blob, bytes: Uint8Array.from(blob.bytes, (b, i) => (i === blob.bytes.length - 1 ? b ^ 1 : b)) }));
  await assert.rejects(h.tensorsAt(1, blob.sha256), refused(/blob has SHA-256 [0-9a-f]{64}, expected/));
  assert.equal(h.newest, 0, 'nothing new held');
});

test('an unknown adapter version (GetAdapter NOT_FOUND) and a blob of another version are refused', async () => {
  const { h } = holder((v) => {
    throw new AdvclipError('NOT_FOUND', `adapter version ${v} is not kept`);
  });
  await assert.rejects(h.tensorsAt(1, 'a'.repeat(64)), refused(/gRPC: adapter version 1 is not kept/));
  const blob = encodeAdapterBlob(initial, 2);
  const { h: h2 } = holder(() => blob);
  await assert.rejects(h2.tensorsAt(1, blob.sha256), refused(/answered version 2/));
});

test('a blob with the right hash but shapes not matching the run’s adapter, or corrupt safetensors, is refused naming the tensor or the damage', async () => {
  const wrongRank = encodeAdapterBlob(other, 1);
  const { h } = holder(() => wrongRank);
  await assert.rejects(h.tensorsAt(1, wrongRank.sha256), refused(/adapter version 1: tensor "base_model\.model\.[^"]+\.lora_A\.weight" has shape \[3,\d+\], expected \[2,\d+\]/));
  const truncated = encodeAdapterBlob(initial, 1).bytes.subarray(0, 100);
  const { h: h2 } = holder(() => ({ version: 1, sha256: sha256Hex(truncated), bytes: truncated }));
  await assert.rejects(h2.tensorsAt(1, sha256Hex(truncated)), refused(/adapter version 1/));
  assert.equal(h.newest + h2.newest, 0);
});
