import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepFlops } from '../../../bench/flops.ts';
import { defaultLoraConfig } from '../../../services/core/lora.ts';
import { archConfig } from '../../../services/core/presets.ts';

/*
 * Hand count for archConfig('tiny'), LoRA r = 2 on q,k,v of both towers.
 * Vision: 32 px / 8 px patches → 16 patches, T = 17 tokens, d = 32, mlp 64, 2 layers, projection 16.
 *   patch embedding   2·16·(3·8·8)·32                     = 196,608
 *   dense per layer   2·17·(4·32·32 + 2·32·64)             = 278,528
 *   attention         QKᵀ + PV: 2·(2·17·17·32)             =  36,992
 *   LoRA per site     2·17·2·32 (x·Aᵀ) + 2·17·2·32 (·Bᵀ)   =   4,352, ×3 sites = 13,056
 *   projection        2·32·16                              =   1,024
 *   forward = 196,608 + 2·(278,528 + 36,992 + 13,056) + 1,024                      = 854,784
 *   δ backward (input gradients, attention twice, down to the pixels)
 *           = 1,024 + 2·(278,528 + 2·36,992 + 13,056) + 196,608                    = 928,768
 *   LoRA backward: layer 1 = 278,528 + 2·36,992 + 3·(4·2,176)                       = 378,624
 *                  layer 0 = 278,528 − 3·(2·17·32·32) + 2·36,992 + 3·(3·2,176)      = 267,648
 *           = 1,024 + 378,624 + 267,648                                            = 647,296
 * Text: T = 16 tokens, d = 32, mlp 64, 2 layers, projection 16.
 *   per layer 2·16·8192 + 4·16·16·32 + 3·(2·2·16·2·32)  = 262,144 + 32,768 + 12,288 = 307,200
 *   forward = 2·307,200 + 1,024                                                    = 615,424
 *   LoRA backward: layer 1 = 262,144 + 65,536 + 3·(4·2,048)                         = 352,256
 *                  layer 0 = 262,144 − 3·(2·16·32·32) + 65,536 + 3·(3·2,048)        = 247,808
 *           = 1,024 + 352,256 + 247,808                                            = 601,088
 */
test('tiny architecture: per-image and per-prompt counts equal the hand count', () => {
  const f = stepFlops(archConfig('tiny'), defaultLoraConfig, { batch: 4, tau: 2, prompts: 3 });
  assert.equal(f.imageForward, 854_784);
  assert.equal(f.imageDeltaBackward, 928_768);
  assert.equal(f.imageLoraBackward, 647_296);
  assert.equal(f.textForward, 615_424);
  assert.equal(f.textLoraBackward, 601_088);
});

test('a step is τ δ rounds, the LoRA round, the class features and the text round', () => {
  const f = stepFlops(archConfig('tiny'), defaultLoraConfig, { batch: 4, tau: 2, prompts: 3 });
  // logits: one 2·B·P·C product per round forward (3), backward ×1 in 2 δ rounds, ×2 in the LoRA round
  const logit = 2 * 4 * 16 * 3;
  assert.equal(f.logits, 7 * logit);
  const expected = 3 * 615_424 + 2 * 4 * (854_784 + 928_768) + 4 * (854_784 + 647_296) + 3 * (615_424 + 601_088) + 7 * logit;
  assert.equal(f.total, expected);
  assert.equal(f.total, 25_775_232);
  const noAscent = stepFlops(archConfig('tiny'), defaultLoraConfig, { batch: 4, tau: 0, prompts: 3 });
  assert.equal(f.total - noAscent.total, 2 * 4 * (854_784 + 928_768) + 2 * 2 * logit, 'each ascent round adds one image forward + input backward per sample');
});

test('ViT-B/32 at the anchor configuration is close to the anchor’s own ~1.85 TFLOP estimate', () => {
  // the anchor leaves out attention scores, LoRA products and the skipped first-layer gradients
  const f = stepFlops(archConfig('vit-b-32'), defaultLoraConfig, { batch: 32, tau: 2, prompts: 10 });
  assert.ok(f.total > 1.83e12 && f.total < 1.9e12, `${f.total}`);
});
