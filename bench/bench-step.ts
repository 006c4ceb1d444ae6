/**
 * `advclip bench step` as a child process (its own backend, a clean heap):
 * the one way every section times a training step, so they time the same
 * thing the public contract does.
 */
import { failureOf, jsonLines, runChild } from './child.ts';
import type { BenchContext, StepFailure, StepRun } from './section.ts';

export interface StepOptions {
  /** e.g. ['--arch', 'vit-b-32', '--batch', '32', '--tau', '2', '--steps', '2'] */
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly label: string;
}

export async function benchStep(ctx: BenchContext, o: StepOptions): Promise<StepRun | StepFailure> {
  const args = ['bin/advclip.mjs', 'bench', 'step', ...o.args, '--json'];
  const envText = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v} `).join('');
  const command = `${envText}node ${args.join(' ')}`;
  ctx.log(`$ ${command}`);
  const run = await runChild(process.execPath, args, { cwd: ctx.repo, env: { ...process.env, ...o.env }, timeoutMs: o.timeoutMs, label: o.label, log: ctx.log });
  const json = jsonLines(run.stdout).find((j) => j.benchmark === 'step' || 'seconds_per_step' in j);
  if (run.code !== 0 || !json || typeof json.seconds_per_step !== 'number') return { ok: false, why: failureOf(run), command };
  return { ok: true, secondsPerStep: json.seconds_per_step, backend: String(json.backend), workers: Number(json.workers ?? 0), json, command };
}
