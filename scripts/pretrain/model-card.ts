/** The model card (README.md) of a pretrained model directory, from the run's own record. */
import type { ClipConfig } from '../../services/core/clip-config.ts';
import type { LossPoint } from './run.ts';
import type { ZeroShotResult } from './zero-shot.ts';

export interface ModelCardFacts {
  readonly name: string;
  readonly command: string;
  readonly seed: number;
  readonly steps: number;
  readonly stepsDone: number;
  readonly batch: number;
  readonly lr: number;
  readonly warmup: number;
  readonly weightDecay: number;
  readonly seconds: number;
  readonly machine: string;
  readonly parameters: number;
  readonly config: ClipConfig;
  readonly lossCurve: readonly LossPoint[];
  readonly zeroShotCurve: readonly { step: number; accuracy: Record<string, number> }[];
  /** measured on the written (F16) files, per task */
  readonly zeroShot: Readonly<Record<string, ZeroShotResult & { chance: number; classNames: readonly string[] }>>;
  readonly template: string;
  readonly files: readonly { name: string; bytes: number }[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

export function modelCard(f: ModelCardFacts): string {
  const v = f.config.vision;
  const t = f.config.text;
  const totalBytes = f.files.reduce((n, file) => n + file.bytes, 0);
  const evalSteps = f.zeroShotCurve.map((p) => p.step);
  const taskNames = Object.keys(f.zeroShot);
  const curveStride = Math.max(1, Math.ceil(f.lossCurve.length / 20));
  const curve = f.lossCurve.filter((_, i) => i % curveStride === 0 || i === f.lossCurve.length - 1);
  return [
    `# ${f.name}: a small CLIP pretrained on synthetic captioned shapes`,
    '',
    `A Hugging Face \`CLIPModel\` directory (F16 safetensors, ${f.parameters.toLocaleString('en')} parameters) trained from scratch by`,
    '`scripts/pretrain/pretrain.ts` on the procedural image–caption pairs of `scripts/synth/` (seeds below 2³¹, never a task seed; held-out',
    'textures and colour–shape pairs never drawn). It exists so the demo and the tests run offline on a model that has learnt something.',
    '',
    '## Reproduce',
    '',
    '```',
    f.command,
    '```',
    '',
    `Deterministic from the seed (${f.seed}) on the wasm backend: init, data order and the tokenizer are pure functions of it.`,
    '',
    '| | |',
    '| --- | --- |',
    `| seed | ${f.seed} |`,
    `| steps | ${f.stepsDone}${f.stepsDone < f.steps ? ` of a ${f.steps}-step schedule: the wall-clock cap stopped the run here` : ''} |`,
    `| batch | ${f.batch} (${(f.stepsDone * f.batch).toLocaleString('en')} image–caption pairs, each drawn once) |`,
    `| optimiser | AdamW (β 0.9/0.98, ε 1e-6, decay ${f.weightDecay} on matrices), lr ${f.lr}, ${f.warmup} warmup steps then cosine |`,
    `| loss | symmetric InfoNCE (CLIP's), logit scale learnt from 1/0.07, clamped at 100 |`,
    `| time | ${(f.seconds / 60).toFixed(1)} min on ${f.machine} |`,
    `| final loss | ${f.lossCurve.at(-1)?.loss.toFixed(3)} (mean of the last ${f.lossCurve.length > 1 ? f.lossCurve.at(-1)!.step - f.lossCurve.at(-2)!.step : f.lossCurve.at(-1)?.step} steps; ln ${f.batch} = ${Math.log(f.batch).toFixed(3)} is chance) |`,
    `| size on disk | ${(totalBytes / 1e6).toFixed(2)} MB |`,
    '',
    '## Architecture',
    '',
    `Vision: ${v.imageSize}×${v.imageSize} images, ${v.patchSize}×${v.patchSize} patches, width ${v.hiddenSize}, ${v.numHiddenLayers} layers, ${v.numAttentionHeads} heads, MLP ${v.intermediateSize}.`,
    `Text: vocabulary ${t.vocabSize} (byte-level BPE trained on the captions, \`<|startoftext|>\` ${t.bosTokenId}, \`<|endoftext|>\` ${t.eosTokenId}), ${t.maxPositionEmbeddings} positions,`,
    `width ${t.hiddenSize}, ${t.numHiddenLayers} layers, ${t.numAttentionHeads} heads, MLP ${t.intermediateSize}, causal mask, pooled at the first \`<|endoftext|>\`.`,
    `Both: pre-LN, quick_gelu, projection ${f.config.projectionDim}. Preprocessing: CLIP's mean/std at ${v.imageSize}×${v.imageSize}.`,
    '',
    '## Zero-shot accuracy (test splits, clean)',
    '',
    `Prompt \`${f.template}\` with the class folder names (\`_\` → space), measured on the files as written (F16 weights).`,
    '',
    '| task | classes | chance | zero-shot | correct |',
    '| --- | --- | --- | --- | --- |',
    ...taskNames.map((name) => {
      const r = f.zeroShot[name];
      return `| ${name} | ${r.classNames.length} | ${pct(r.chance)} | **${pct(r.accuracy)}** | ${r.correct}/${r.total} |`;
    }),
    '',
    'Per class:',
    '',
    ...taskNames.flatMap((name) => {
      const r = f.zeroShot[name];
      return [`- ${name}: ${r.classNames.map((c, i) => `${c} ${pct(r.perClass[i])}`).join(', ')}`];
    }),
    '',
    '## Training curve',
    '',
    '| step | mean loss over the window |',
    '| --- | --- |',
    ...curve.map((p) => `| ${p.step} | ${p.loss.toFixed(3)} |`),
    '',
    evalSteps.length > 0 ? '| step | ' + taskNames.join(' | ') + ' |' : '',
    evalSteps.length > 0 ? '| --- | ' + taskNames.map(() => '---').join(' | ') + ' |' : '',
    ...f.zeroShotCurve.map((p) => `| ${p.step} | ${taskNames.map((n) => (p.accuracy[n] === undefined ? '' : pct(p.accuracy[n]))).join(' | ')} |`),
    '',
    '(zero-shot accuracy during training, on the F32 weights)',
    '',
    '## Files',
    '',
    ...f.files.map((file) => `- \`${file.name}\` (${(file.bytes / 1e3).toFixed(1)} kB)`),
    '',
  ].join('\n');
}
