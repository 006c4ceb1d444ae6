/**
 * Training step: seconds per AdvCLIP-LoRA step through the public
 * `advclip bench step` (ViT-B/32 real size with random weights, batch 32,
 * τ = 2, on wasm and native; and the shipped small model's architecture),
 * its FLOPs counted from the architecture (flops.ts), and the FLOP/s as a
 * fraction of the machine's 2-core sgemm peak from the kernel section.
 * Goal (issue 8): ≥ 50 % of that peak; PyTorch reaches about 22 %.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultLoraConfig } from '../services/core/lora.ts';
import { archConfig } from '../services/core/presets.ts';
import { readClipConfig } from '../services/io/hf-config.ts';
import type { ClipConfig } from '../services/core/clip-config.ts';
import { benchStep } from './bench-step.ts';
import { ratioOf, unavailable, type Figure } from './figure.ts';
import { stepFlops } from './flops.ts';
import type { BenchContext, Section, SectionOutcome } from './section.ts';

export const SMALL_MODEL_DIR = 'models/clip-small';
const TAU = 2;
const GOAL = { op: '>=', target: 0.5, on: 'ratio' } as const;

interface StepCase {
  readonly key: string;
  readonly label: string;
  readonly config: ClipConfig;
  readonly model: string[];
  readonly batch: number;
  /** class prompts C (bench step's default: 10, as the anchor) */
  readonly prompts: number;
  readonly steps: number;
  readonly backend: 'wasm' | 'native';
}

/** The shipped small model first and the native ViT-B/32 step last: the PyTorch section runs right after it. */
async function cases(ctx: BenchContext): Promise<{ cases: StepCase[]; missing: Figure[] }> {
  const out: StepCase[] = [];
  const missing: Figure[] = [];
  const dir = join(ctx.repo, SMALL_MODEL_DIR);
  if (existsSync(join(dir, 'config.json'))) {
    const config = await readClipConfig(join(dir, 'config.json'));
    out.push({ key: 'clip-small.b32.native', label: `${SMALL_MODEL_DIR} architecture step, batch 32, τ ${TAU}, native 2 threads`, config, model: ['--model', SMALL_MODEL_DIR], batch: 32, prompts: 10, steps: ctx.quick ? 2 : 5, backend: 'native' });
  } else {
    missing.push(unavailable('step.clip-small', `${SMALL_MODEL_DIR} step FLOP/s`, 'GFLOP/s', `${SMALL_MODEL_DIR}/config.json not found (the shipped small model is not in this checkout)`, GOAL));
  }
  // --quick: the real-size tower on ~1/6 of the work (a batch-8 step alone took 23 s on the busy 2-core machine)
  const batch = ctx.quick ? 4 : 32;
  const prompts = ctx.quick ? 4 : 10;
  for (const backend of ctx.quick ? (['native'] as const) : (['wasm', 'native'] as const)) {
    out.push({
      key: `vit-b-32.b${batch}.${backend}`,
      label: `ViT-B/32 step, batch ${batch}, ${prompts} prompts, τ ${TAU}, ${backend === 'native' ? 'native 2 threads' : 'wasm 1 thread'}`,
      config: archConfig('vit-b-32'),
      model: ['--arch', 'vit-b-32'],
      batch,
      prompts,
      steps: ctx.quick ? 1 : 2,
      backend,
    });
  }
  return { cases: out, missing };
}

async function run(ctx: BenchContext): Promise<SectionOutcome> {
  const { cases: todo, missing } = await cases(ctx);
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const peak = ctx.shared.sgemmPeak?.[2];
  const lora = { ...defaultLoraConfig, dropout: 0 };
  for (const c of todo) {
    const flops = stepFlops(c.config, lora, { batch: c.batch, tau: TAU, prompts: c.prompts });
    const args = [...c.model, '--batch', String(c.batch), '--prompts', String(c.prompts), '--tau', String(TAU), '--steps', String(c.steps), '--backend', c.backend];
    // both cores, as the PyTorch anchor's 2 threads (native's default would be every core of a bigger machine)
    const env = c.backend === 'native' ? { ADVCLIP_NATIVE_THREADS: '2' } : undefined;
    const r = await benchStep(ctx, { args, env, timeoutMs: 20 * 60_000, label: c.key });
    details[c.key] = { command: r.command, flops, result: r.ok ? r.json : { error: r.why } };
    if (!r.ok) {
      figures.push(unavailable(`step.${c.key}`, c.label, 's/step', `${r.command}: ${r.why}`, GOAL));
      continue;
    }
    const gflops = flops.total / r.secondsPerStep / 1e9;
    figures.push({ id: `step.${c.key}.seconds`, label: `${c.label}: time`, value: r.secondsPerStep, unit: 's/step', note: r.command });
    figures.push({
      id: `step.${c.key}.gflops`,
      label: `${c.label}: FLOP/s (${(flops.total / 1e9).toFixed(1)} GFLOP/step)`,
      value: gflops,
      unit: 'GFLOP/s',
      ratio: { value: ratioOf(gflops, peak), of: '2-core sgemm peak' },
      goal: GOAL,
    });
    if (c.key === 'vit-b-32.b32.native') ctx.shared.ourVitB32Step = { seconds: r.secondsPerStep, how: r.command };
  }
  return { figures: [...figures, ...missing], details };
}

export const stepSection: Section = { name: 'step', title: 'Training step: FLOP/s as a fraction of the 2-core sgemm peak', run };
