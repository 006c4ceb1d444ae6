/**
 * Distributed overhead and scaling, through `advclip bench step --workers N`
 * (local worker processes over loopback gRPC): 1 worker vs in-process (goal
 * ≤ 1.05× the time), 2 workers vs 1 (goal ≥ 1.8× the samples/s), and what
 * a step puts on the network as bench step reports it (the coordinator's
 * count: protobuf bytes of tasks and results, the rounds' time outside the
 * workers' compute, read as a share of the step). Runs 2
 * workers (unless the PyTorch section just did), 1 worker, in-process, in
 * that order, so each ratio compares neighbours in time on a shared machine.
 * Reports "not available" while `bench step` does not take --workers.
 */
import { CLUSTER_BATCH, clusterLabel, clusterStep } from './cluster-step.ts';
import { ratioOf, unavailable, type Figure } from './figure.ts';
import type { BenchContext, Section, SectionOutcome, StepFailure, StepRun } from './section.ts';

const OVERHEAD_GOAL = { op: '<=', target: 1.05, on: 'ratio' } as const;
const SCALING_GOAL = { op: '>=', target: 1.8, on: 'ratio' } as const;

/** bench step's own figures about the network, whatever it names them (bytes, rpc/network time) */
const networkFields = (json: Record<string, unknown>): [string, number][] =>
  Object.entries(json).filter((e): e is [string, number] => typeof e[1] === 'number' && /byte|network|wire|rpc|grpc|transfer/i.test(e[0]));

const unitOf = (key: string) => (/byte/i.test(key) ? 'bytes' : /(^|_)ms$/.test(key) ? 'ms' : /second|(^|_)s$/.test(key) ? 's' : '');

const detail = (r: StepRun | StepFailure) => (r.ok ? { command: r.command, result: r.json } : { command: r.command, error: r.why });

async function run(ctx: BenchContext): Promise<SectionOutcome> {
  const label = clusterLabel(ctx);
  const two = ctx.shared.twoWorkers ?? (await clusterStep(ctx, 2));
  if (!two.ok && /not available/i.test(two.why)) {
    const why = `bench step --workers is not available in this build (${two.command})`;
    return {
      figures: [
        unavailable('distributed.overhead', `1 worker over loopback gRPC vs in-process (${label})`, 's/step', why, OVERHEAD_GOAL),
        unavailable('distributed.scaling', `2 workers vs 1, samples/s (${label})`, 'samples/s', 'as above', SCALING_GOAL),
        unavailable('distributed.network', 'network bytes and time per step', '', 'as above'),
      ],
      details: { workers2: detail(two) },
    };
  }
  const one = await clusterStep(ctx, 1);
  const zero = await clusterStep(ctx, null);
  const samplesPerSecond = (r: StepRun) => CLUSTER_BATCH / r.secondsPerStep;
  const figures: Figure[] = [];
  if (zero.ok) figures.push({ id: 'distributed.in_process.seconds', label: `in-process (${label})`, value: zero.secondsPerStep, unit: 's/step', note: zero.command });
  else figures.push(unavailable('distributed.in_process', `in-process (${label})`, 's/step', `${zero.command}: ${zero.why}`));
  if (one.ok) {
    figures.push({
      id: 'distributed.workers1.seconds',
      label: `1 worker over loopback gRPC (${label})`,
      value: one.secondsPerStep,
      unit: 's/step',
      ratio: { value: zero.ok ? ratioOf(one.secondsPerStep, zero.secondsPerStep) : null, of: 'in-process time' },
      goal: OVERHEAD_GOAL,
      note: one.command,
    });
  } else {
    figures.push(unavailable('distributed.workers1', `1 worker over loopback gRPC (${label})`, 's/step', `${one.command}: ${one.why}`, OVERHEAD_GOAL));
  }
  if (two.ok) {
    figures.push({
      id: 'distributed.workers2.samples_per_second',
      label: `2 workers (${label})`,
      value: samplesPerSecond(two),
      unit: 'samples/s',
      ratio: { value: one.ok ? ratioOf(samplesPerSecond(two), samplesPerSecond(one)) : null, of: '1 worker' },
      goal: SCALING_GOAL,
      note: two.command,
    });
  } else {
    figures.push(unavailable('distributed.workers2', `2 workers vs 1, samples/s (${label})`, 'samples/s', `${two.command}: ${two.why}`, SCALING_GOAL));
  }
  for (const [key, name, r] of [['workers1', '1 worker', one], ['workers2', '2 workers', two]] as const) {
    if (!r.ok) continue;
    const fields = networkFields(r.json);
    if (fields.length === 0) figures.push(unavailable(`distributed.${key}.network`, `network per step, ${name}`, '', 'bench step --workers does not report network bytes/time'));
    for (const [field, value] of fields) {
      const unit = unitOf(field);
      const share = unit === 's' ? { ratio: { value: ratioOf(value, r.secondsPerStep), of: 'step time' } } : {};
      figures.push({ id: `distributed.${key}.${field}`, label: `${name}: ${field.replaceAll('_', ' ')}`, value, unit, ...share });
    }
  }
  return { figures, details: { in_process: detail(zero), workers1: detail(one), workers2: detail(two) } };
}

export const distributedSection: Section = { name: 'distributed', title: 'Distributed overhead and scaling (loopback gRPC workers)', run };
