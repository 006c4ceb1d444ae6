/**
 * `advclip coordinator`: the training of `advclip train`, with every round
 * computed by workers over gRPC (run/serve.ts). This file maps the flags
 * onto the run's options, once.
 */
import { join } from 'node:path';
import { DEFAULT_DEADLINE } from '../coordinator/remote-executor.ts';
import { invalidArgument } from '../core/errors.ts';
import { AggregationRules } from '../core/aggregate.ts';
import { SyncModes } from '../core/train-spec.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import type { Logger } from '../protocol/log.ts';
import type { CoordinatorRunOptions } from '../run/serve.ts';
import { serveTraining } from '../run/serve.ts';
import { RUN_DEFAULTS } from '../run/spec.ts';
import type { CommandSpec, FlagTable, FlagValues } from './args.ts';
import { checkpointFlags, checkpointOptionsFrom, runSpecFrom, trainFlags } from './train-flags.ts';
import { clusterTokenFrom, metricsFlags, natsCredentialsFromEnv, natsTlsFlags, natsTlsFrom, securityFrom, tlsFlags } from './transport-flags.ts';

/** Training flags plus the ones every distributed run has (coordinator and cluster). */
export const distributedTrainFlags: FlagTable = {
  ...trainFlags,
  sync: { type: 'string', default: RUN_DEFAULTS.train.sync, choices: SyncModes, help: 'exact: τ δ-rounds + 1 LoRA round per step; local-delta: each worker ascends its own δ (1 round)' },
  aggregate: {
    type: 'string',
    default: RUN_DEFAULTS.train.aggregation.rule,
    choices: AggregationRules,
    help: "local-delta: how the workers' δ and gradient sums combine, coordinate-wise; median and trimmed-mean resist a minority of workers sending wrong numbers",
  },
  trim: { type: 'int', default: RUN_DEFAULTS.train.aggregation.trim, arg: 'K', help: 'trimmed-mean: drop the K largest and K smallest values of every coordinate (needs 2K+1 workers)' },
  'verify-fraction': {
    type: 'fraction',
    default: RUN_DEFAULTS.train.verifyFraction,
    arg: 'P',
    help: 'exact: recompute a seeded random P of each round’s chunks on a second worker of the same backend and compare the bits; a third decides a mismatch and the wrong worker is quarantined (1: every chunk twice)',
  },
  nats: { type: 'string', arg: 'URL', help: 'NATS server for adapter versions, nats:// or tls:// (credentials: env NATS_USER with NATS_PASSWORD or NATS_PASSWORD_FILE); without it adapters go over gRPC' },
  ...metricsFlags,
};

/** Flags of the coordinator's own transport and pacing, shared with `advclip cluster`. */
export const coordinatorTuningFlags: FlagTable = {
  'task-deadline-ms': { type: 'int', default: DEFAULT_DEADLINE.minMs, arg: 'MS', help: 'advanced: shortest task deadline (a worker’s first task gets 10×); chunks not answered in time go to another worker, a late answer is discarded' },
  'task-deadline-factor': { type: 'number', default: DEFAULT_DEADLINE.factor, arg: 'F', help: 'advanced: a task’s deadline is at least F × the time the worker’s measured rate needs for its samples' },
  'duplicate-factor': {
    type: 'number',
    default: DEFAULT_DEADLINE.duplicateFactor,
    arg: 'F',
    help: 'advanced: a task still out after F × its expected time is sent to an idle worker of its backend too, and the first good result counts (stragglers; 0: never)',
  },
  'heartbeat-ms': { type: 'int', default: HEARTBEAT_INTERVAL_MS, arg: 'MS', help: 'advanced: heartbeat interval workers are given; an idle worker silent for 4× that is dropped' },
};

export const coordinatorFlags: FlagTable = {
  ...distributedTrainFlags,
  out: { ...trainFlags.out, required: false, help: 'where the PEFT adapter and train.json go (default CHECKPOINT_DIR/adapter)' },
  listen: { type: 'string', default: '127.0.0.1:50051', arg: 'HOST:PORT', help: 'gRPC address for workers (port 0: any free port; the bound one is logged)' },
  'min-workers': { type: 'int', default: 1, help: 'rounds wait until this many workers are live (advclip_waiting_for_workers = 1 meanwhile)' },
  ...natsTlsFlags,
  ...tlsFlags,
  'allow-identities': { type: 'string', arg: 'FILE', help: 'admit only worker identities listed here, one a line (mTLS: the client certificate’s SAN URI, else its CN)' },
  'deny-identities': { type: 'string', arg: 'FILE', help: 'refuse worker identities listed here (revoked); the file is read again whenever it changes' },
  ...checkpointFlags,
  'checkpoint-dir': { ...checkpointFlags['checkpoint-dir'], help: `${checkpointFlags['checkpoint-dir'].help}; the default --out is DIR/adapter` },
  ...coordinatorTuningFlags,
};

export const coordinatorCommand: CommandSpec = {
  name: 'coordinator',
  summary: 'Coordinate a training run whose rounds workers compute (gRPC, adapter versions on NATS, Prometheus metrics)',
  usage: 'advclip coordinator --model DIR --data DIR [training flags of advclip train] [--sync exact|local-delta [--aggregate mean|median|trimmed-mean [--trim K]]] [--verify-fraction P] [--listen HOST:PORT] [--nats URL [--nats-ca F]] [--metrics-port 9464] [--min-workers N] (--tls-ca F --tls-cert F --tls-key F | --insecure) [--checkpoint-dir DIR [--checkpoint-every N]] --out ADAPTER_DIR',
  flags: coordinatorFlags,
};

/** The coordinator's run, from its flags: the one place they are read. */
export function coordinatorRunFrom(flags: FlagValues): CoordinatorRunOptions {
  const out = (flags.out as string | undefined) ?? (flags['checkpoint-dir'] ? join(flags['checkpoint-dir'] as string, 'adapter') : undefined);
  if (!out) throw invalidArgument('advclip coordinator: --out (or --checkpoint-dir) is required (see --help)');
  const minWorkers = flags['min-workers'] as number;
  if (!Number.isInteger(minWorkers) || minWorkers < 1) throw invalidArgument(`--min-workers must be ≥ 1, got ${minWorkers}`);
  const natsUrl = flags.nats as string | undefined;
  return {
    run: runSpecFrom(flags, flags.sync as string),
    out,
    checkpoints: checkpointOptionsFrom(flags),
    json: flags.json === true,
    backend: flags.backend as string | undefined,
    listen: flags.listen as string,
    security: securityFrom(flags),
    clusterToken: clusterTokenFrom(flags),
    identities: identitiesFrom(flags),
    nats: natsUrl ? { url: natsUrl, ...natsCredentialsFromEnv(), tls: natsTlsFrom(flags) } : undefined,
    metrics: { port: flags['metrics-port'] as number, host: flags['metrics-host'] as string },
    minWorkers,
    ...tuningFrom(flags),
  };
}

/** --allow-identities, --deny-identities; absent when neither is given. */
function identitiesFrom(flags: FlagValues): CoordinatorRunOptions['identities'] {
  const allowFile = flags['allow-identities'] as string | undefined;
  const denyFile = flags['deny-identities'] as string | undefined;
  return allowFile || denyFile ? { allowFile, denyFile } : undefined;
}

/** --task-deadline-ms, --task-deadline-factor, --duplicate-factor, --heartbeat-ms. */
export function tuningFrom(flags: FlagValues): Pick<CoordinatorRunOptions, 'deadline' | 'heartbeatIntervalMs'> {
  const deadlineMs = positiveInt(flags, 'task-deadline-ms');
  return {
    deadline: { minMs: deadlineMs, factor: positiveNumber(flags, 'task-deadline-factor'), unmeasuredMs: 10 * deadlineMs, duplicateFactor: nonNegativeNumber(flags, 'duplicate-factor') },
    heartbeatIntervalMs: positiveInt(flags, 'heartbeat-ms'),
  };
}

function positiveNumber(flags: FlagValues, name: string): number {
  const value = flags[name] as number;
  if (!(value > 0)) throw invalidArgument(`--${name} must be > 0, got ${value}`);
  return value;
}

function nonNegativeNumber(flags: FlagValues, name: string): number {
  const value = flags[name] as number;
  if (!(value >= 0)) throw invalidArgument(`--${name} must be ≥ 0, got ${value}`);
  return value;
}

function positiveInt(flags: FlagValues, name: string): number {
  const value = flags[name] as number;
  if (!Number.isInteger(value) || value < 1) throw invalidArgument(`--${name} must be ≥ 1, got ${value}`);
  return value;
}

export async function runCoordinator(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const summary = await serveTraining(coordinatorRunFrom(flags), log);
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else log.info(`wrote ${summary.out}`, { final_loss: summary.final?.loss });
}
