/**
 * `advclip cluster --workers N`: a coordinator in this process, N worker
 * processes, a loopback nats-server and throwaway mTLS (run/local-cluster.ts).
 * This file maps the flags onto the run's options, once.
 */
import { invalidArgument } from '../core/errors.ts';
import type { Logger } from '../protocol/log.ts';
import { trainOnLocalCluster, type LocalClusterOptions } from '../run/local-cluster.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import { coordinatorTuningFlags, distributedTrainFlags, tuningFrom } from './coordinator.ts';
import { runSpecFrom } from './train-flags.ts';

export const clusterCommand: CommandSpec = {
  name: 'cluster',
  summary: 'Train on a local cluster: a coordinator, N worker processes, a loopback nats-server, mTLS',
  usage: 'advclip cluster --workers N --model DIR --data DIR [training flags of advclip train] [--sync exact|local-delta [--aggregate mean|median|trimmed-mean [--trim K]]] [--verify-fraction P] [--nats URL] [--insecure] --out ADAPTER_DIR [--json]',
  flags: {
    workers: { type: 'int', default: 2, help: 'workers to start: one process each up to the cores, beyond that replicas of one process per core (advclip worker --replicas)' },
    ...distributedTrainFlags,
    insecure: { type: 'boolean', help: 'plaintext gRPC instead of throwaway mTLS certificates (logs a warning)' },
    ...coordinatorTuningFlags,
  },
};

/** The local cluster's run, from its flags. */
export function localClusterFrom(flags: FlagValues): LocalClusterOptions {
  const workers = flags.workers as number;
  if (!Number.isInteger(workers) || workers < 1) throw invalidArgument(`--workers must be ≥ 1, got ${workers}`);
  return {
    run: runSpecFrom(flags, flags.sync as string),
    out: flags.out as string,
    json: flags.json === true,
    backend: flags.backend as string | undefined,
    workers,
    natsUrl: flags.nats as string | undefined,
    insecure: flags.insecure === true,
    metrics: { port: flags['metrics-port'] as number, host: flags['metrics-host'] as string },
    ...tuningFrom(flags),
  };
}

export async function runCluster(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const summary = await trainOnLocalCluster(localClusterFrom(flags), log);
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else log.info(`wrote ${summary.out}`, { final_loss: summary.final?.loss });
}
