/**
 * Distributed overhead and scaling, through `advclip bench step --workers N`
 * (local worker processes over loopback gRPC): 1 worker vs in-process (goal
 * ≤ 1.05× the time), 2 workers vs 1 (goal ≥ 1.8× the samples/s), and what
 * the step sends over the network when bench step reports it. Every process
 * computes with one native thread (ADVCLIP_NATIVE_THREADS=1), so in-process,
 * 1 worker and 2 workers differ only in the distribution. Reports "not
 * available" while `bench step` does not take --workers yet.
 */
import { benchStep, type StepRun } from './bench-step.ts';
import { ratioOf, unavailable, type Figure } from './figure.ts';
import type { BenchContext, Section, SectionOutcome } from './section.ts';

const OVERHEAD_GOAL = { op: '<=', target: 1.05, on: 'ratio' } as const;
const SCALING_GOAL = { op: '>=', target: 1.8, on: 'ratio' } as const;
const ONE_THREAD = { ADVCLIP_NATIVE_THREADS: '1' };

/** bench step's own figures about the network, whatever it names them (bytes, rpc/network time) */
const networkFields = (json: Record<string, unknown>): [string, number][] =>
  Object.entries(json).filter((e): e is [string, number] => typeof e[1] === 'number' && /byte|network|wire|rpc|grpc|transfer/i.test(e[0]));

const unitOf = (key: string) => (/byte/i.test(key) ? 'bytes' : /(^|_)ms$/.test(key) ? 'ms' : /second|(^|_)s$/.test(key) ? 's' : '');

async function run(ctx: BenchContext): Promise<SectionOutcome> {
  // --quick cannot afford three real-size runs at one thread each: the tiny architecture shows the messaging overhead at its worst
  const arch = ctx.quick ? 'tiny' : 'vit-b-32';
  const batch = 32;
  // one measured step after the warm-up in full runs: three real-size runs at one thread each already take ~10 minutes
  const steps = ctx.quick ? 3 : 1;
  const config = ['--arch', arch, '--batch', String(batch), '--tau', '2', '--steps', String(steps), '--chunk-size', '8', '--backend', 'native'];
  const label = `${arch}, batch ${batch} in 4 chunks, τ 2, native 1 thread per process`;
  const timeoutMs = 20 * 60_000;

  // --workers first: while bench step refuses it, the in-process runs are not worth their minutes here
  const one = await benchStep(ctx, { args: [...config, '--workers', '1'], env: ONE_THREAD, timeoutMs, label: 'workers 1' });
  if (!one.ok) {
    const why = /not available/i.test(one.why) ? `bench step --workers is not available in this build (${one.command})` : `${one.command}: ${one.why}`;
    return {
      figures: [
        unavailable('distributed.overhead', `1 worker over loopback gRPC vs in-process (${label})`, 's/step', why, OVERHEAD_GOAL),
        unavailable('distributed.scaling', `2 workers vs 1, samples/s (${label})`, 'samples/s', 'the 1-worker run above failed', SCALING_GOAL),
        unavailable('distributed.network', 'network bytes and time per step', '', 'the 1-worker run above failed'),
      ],
      details: { workers1: { command: one.command, error: one.why } },
    };
  }
  const zero = await benchStep(ctx, { args: config, env: ONE_THREAD, timeoutMs, label: 'in-process' });
  const two = await benchStep(ctx, { args: [...config, '--workers', '2'], env: ONE_THREAD, timeoutMs, label: 'workers 2' });
  const sps = (r: StepRun) => batch / r.secondsPerStep;
  const figures: Figure[] = [];
  if (zero.ok) {
    figures.push({ id: 'distributed.in_process.seconds', label: `in-process (${label})`, value: zero.secondsPerStep, unit: 's/step', note: zero.command });
  }
  figures.push({
    id: 'distributed.workers1.seconds',
    label: `1 worker over loopback gRPC (${label})`,
    value: one.secondsPerStep,
    unit: 's/step',
    ratio: { value: zero.ok ? ratioOf(one.secondsPerStep, zero.secondsPerStep) : null, of: 'in-process time' },
    goal: OVERHEAD_GOAL,
    note: zero.ok ? one.command : `${one.command}; in-process run failed: ${zero.why}`,
  });
  if (two.ok) {
    figures.push({
      id: 'distributed.workers2.samples_per_second',
      label: `2 workers (${label})`,
      value: sps(two),
      unit: 'samples/s',
      ratio: { value: ratioOf(sps(two), sps(one)), of: '1 worker' },
      goal: SCALING_GOAL,
      note: two.command,
    });
    if (!ctx.quick) ctx.shared.ourVitB32TwoWorkers = { seconds: two.secondsPerStep, how: two.command };
  } else {
    figures.push(unavailable('distributed.workers2', `2 workers vs 1, samples/s (${label})`, 'samples/s', `${two.command}: ${two.why}`, SCALING_GOAL));
  }
  for (const [name, r] of [['workers1', one], ['workers2', two]] as const) {
    if (!r.ok) continue;
    const fields = networkFields(r.json);
    if (fields.length === 0) figures.push(unavailable(`distributed.${name}.network`, `network per step, ${name === 'workers1' ? '1 worker' : '2 workers'}`, '', 'bench step --workers does not report network bytes/time'));
    for (const [key, value] of fields) figures.push({ id: `distributed.${name}.${key}`, label: `${name === 'workers1' ? '1 worker' : '2 workers'}: ${key}`, value, unit: unitOf(key) });
  }
  const detail = (r: typeof one | typeof zero | typeof two) => (r.ok ? { command: r.command, result: r.json } : { command: r.command, error: r.why });
  return { figures, details: { in_process: detail(zero), workers1: detail(one), workers2: detail(two) } };
}

export const distributedSection: Section = { name: 'distributed', title: 'Distributed overhead and scaling (loopback gRPC workers)', run };
