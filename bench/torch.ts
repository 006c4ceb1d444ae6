/**
 * Against PyTorch: the anchor (../shared/anchors/torch_advclip_step.py, or
 * $ADVCLIP_ANCHOR) runs the same AdvCLIP-LoRA step — ViT-B/32 shapes, random
 * weights, LoRA r = 2 on q,k,v of both towers, batch 32 at 224 px, 10
 * prompts of 77 tokens, τ = 2 — in PyTorch on CPU with 2 threads, between
 * our `bench step` of that configuration using both cores two ways: native
 * with 2 threads in one process (the step section's, just before), and 2
 * worker processes of one thread (right after; the distributed section
 * reuses it). Goal: ours / torch ≤ 1.0. Both stacks run under the machine's
 * environment (its OPENBLAS_CORETYPE pins torch's OpenBLAS to Haswell; our
 * native products are oneDNN's, which picks its ISA itself). Skipped under
 * --quick: the anchor alone runs 4 steps of ~19 s.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultLoraConfig } from '../services/core/lora.ts';
import { archConfig } from '../services/core/presets.ts';
import { benchStep } from './bench-step.ts';
import { failureOf, runChild } from './child.ts';
import { clusterStep } from './cluster-step.ts';
import { ratioOf, unavailable, type Figure } from './figure.ts';
import { stepFlops } from './flops.ts';
import type { BenchContext, Section, SectionOutcome, StepFigure } from './section.ts';

const GOAL = { op: '<=', target: 1.0, on: 'ratio' } as const;
const THREADS = 2;
const INSTALL = 'apt-get install -y python3-torch libopenblas0-pthread (Debian; without OpenBLAS its torch is ~30× slower)';
/** the anchor's shebang is Debian's python, where apt installs torch */
const PYTHONS = ['/usr/bin/python3', 'python3'];

export interface AnchorLine {
  readonly version: string;
  readonly threads: number;
  readonly secondsPerStep: number;
  readonly gflops: number;
  readonly tflopPerStep: number;
}

/** The anchor's result line: `torch 1.13.0 threads=2: 18.60 s/step, ~99 GFLOP/s (~1.85 TFLOP/step)`. */
export function parseAnchorLine(text: string): AnchorLine | null {
  const m = /torch (\S+) threads=(\d+): ([\d.]+) s\/step, ~([\d.]+) GFLOP\/s \(~([\d.]+) TFLOP\/step\)/.exec(text);
  return m ? { version: m[1], threads: Number(m[2]), secondsPerStep: Number(m[3]), gflops: Number(m[4]), tflopPerStep: Number(m[5]) } : null;
}

export function anchorPath(repo: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.ADVCLIP_ANCHOR ?? resolve(repo, '../shared/anchors/torch_advclip_step.py');
}

async function pythonWithTorch(ctx: BenchContext): Promise<string | null> {
  for (const python of PYTHONS) {
    const r = await runChild(python, ['-c', 'import torch'], { cwd: ctx.repo, timeoutMs: 60_000, label: python, log: () => undefined });
    if (r.code === 0) return python;
  }
  return null;
}

async function run(ctx: BenchContext): Promise<SectionOutcome> {
  const label = 'PyTorch step (anchor), ViT-B/32, batch 32, τ 2, 2 threads';
  const anchor = anchorPath(ctx.repo);
  if (!existsSync(anchor)) return { figures: [unavailable('torch', label, 's/step', `anchor not found at ${anchor} (set ADVCLIP_ANCHOR)`, GOAL)], details: { anchor } };
  const python = await pythonWithTorch(ctx);
  if (!python) return { figures: [unavailable('torch', label, 's/step', `torch not installed (tried ${PYTHONS.join(', ')}): ${INSTALL}`, GOAL)], details: { anchor } };
  if (ctx.quick) return { figures: [unavailable('torch', label, 's/step', `skipped under --quick (the anchor runs 4 steps of ~19 s); run \`npm run bench\` (${python} has torch)`, GOAL)], details: { anchor, python } };

  let ours: StepFigure | undefined = ctx.shared.ourVitB32Step;
  if (!ours) {
    const r = await benchStep(ctx, { args: ['--arch', 'vit-b-32', '--batch', '32', '--tau', '2', '--steps', '2', '--backend', 'native'], env: { ADVCLIP_NATIVE_THREADS: String(THREADS) }, timeoutMs: 20 * 60_000, label: 'ours' });
    if (r.ok) ours = { seconds: r.secondsPerStep, how: r.command };
  }
  const args = [anchor, String(THREADS)];
  ctx.log(`$ ${python} ${args.join(' ')}`);
  const t = await runChild(python, args, { cwd: ctx.repo, timeoutMs: 20 * 60_000, label: 'torch', log: ctx.log });
  const line = parseAnchorLine(t.stdout);
  if (t.code !== 0 || !line) return { figures: [unavailable('torch', label, 's/step', `${python} ${args.join(' ')}: ${failureOf(t)}`, GOAL)], details: { anchor, python, stdout: t.stdout } };
  const two = await clusterStep(ctx, 2);
  ctx.shared.twoWorkers = two;

  const flops = stepFlops(archConfig('vit-b-32'), { ...defaultLoraConfig, dropout: 0 }, { batch: 32, tau: 2, prompts: 10 }).total;
  const peak = ctx.shared.sgemmPeak?.[2];
  const figures: Figure[] = [
    { id: 'torch.seconds', label, value: line.secondsPerStep, unit: 's/step', note: `torch ${line.version}; ${python} ${args.join(' ')} (its own estimate: ${line.gflops} GFLOP/s)` },
    {
      id: 'torch.gflops',
      label: `PyTorch step FLOP/s (${(flops / 1e12).toFixed(2)} TFLOP/step, bench/flops.ts)`,
      value: flops / line.secondsPerStep / 1e9,
      unit: 'GFLOP/s',
      ratio: { value: ratioOf(flops / line.secondsPerStep / 1e9, peak), of: '2-core sgemm peak' },
    },
  ];
  const candidates: [string, string, StepFigure | string][] = [
    ['native2', 'native, 2 threads, before the anchor', ours ?? 'our in-process step did not run'],
    ['workers2', '2 worker processes, after the anchor', two.ok ? { seconds: two.secondsPerStep, how: two.command } : `${two.command}: ${two.why}`],
  ];
  for (const [key, how, f] of candidates) {
    if (typeof f === 'string') figures.push(unavailable(`torch.ours_over_torch.${key}`, `ours (${how})`, 's/step', f, GOAL));
    else figures.push({ id: `torch.ours_over_torch.${key}`, label: `ours (${how}), same step`, value: f.seconds, unit: 's/step', ratio: { value: ratioOf(f.seconds, line.secondsPerStep), of: 'PyTorch time' }, goal: GOAL, note: f.how });
  }
  return { figures, details: { anchor, python, anchor_output: t.stdout.trim(), parsed: line, ours: ours ?? null, ours_two_workers: two.ok ? { seconds: two.secondsPerStep, command: two.command } : { error: two.why }, flops } };
}

export const torchSection: Section = { name: 'torch', title: 'Against PyTorch (the anchor step, side by side)', run };
