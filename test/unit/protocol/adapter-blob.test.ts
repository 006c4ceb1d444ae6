import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdvclipError } from '../../../services/core/errors.ts';
import { defaultLoraConfig, initLora } from '../../../services/core/lora.ts';
import { readClipConfig } from '../../../services/io/hf-config.ts';
import { adapterWeightsBytes } from '../../../services/io/peft.ts';
import { decodeAdapterBlob, encodeAdapterBlob, loraConfigOfBlob } from '../../../services/protocol/adapter-blob.ts';

const model = await readClipConfig(new URL('../../fixtures/tiny-clip-f32/config.json', import.meta.url).pathname);

describe('adapter blobs', () => {
  it('carry their LoRA config, so a blob alone makes a PEFT adapter', () => {
    const config = { ...defaultLoraConfig, rank: 3, alpha: 6, dropout: 0.1, rslora: true, towers: ['vision'] as const, layers: [0] };
    const lora = initLora(model, config, 7);
    const blob = encodeAdapterBlob(lora, 5);
    assert.deepEqual(loraConfigOfBlob(blob.bytes, 'v5'), lora.config);
    const back = decodeAdapterBlob(blob.bytes, lora, 'v5');
    assert.deepEqual(back.a.map((t) => t.data), lora.a.map((t) => t.data));
  });

  it('encode the same bytes for the same adapters and version (coordinator and workers agree on the hash)', () => {
    const lora = initLora(model, defaultLoraConfig, 1);
    assert.equal(encodeAdapterBlob(lora, 2).sha256, encodeAdapterBlob(initLora(model, defaultLoraConfig, 1), 2).sha256);
  });

  it('a blob without the config (an older publisher) is DATA_LOSS naming where it came from', () => {
    const bare = adapterWeightsBytes(initLora(model, defaultLoraConfig, 1), { advclip_version: '3' });
    assert.throws(() => loraConfigOfBlob(bare, 'adapter version 3 from nats://x'), (e: unknown) => e instanceof AdvclipError && e.code === 'DATA_LOSS' && /adapter version 3 from nats:\/\/x: no advclip_lora_config/.test(e.message));
  });
});
