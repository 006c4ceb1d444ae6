/**
 * `advclip worker`: joins a coordinator, builds the run's setup from the
 * run configuration it is given (with its own --model/--data paths when
 * set), computes tasks until the run ends (exit 0) or SIGTERM drains it.
 */
import { availableParallelism, hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type { SyncMode } from '../core/train-spec.ts';
import { ShardComputer } from '../core/shard.ts';
import { modelDirSha256, modelSha256, trainSetSha256 } from '../io/model-hash.ts';
import { DrainReasons } from '../protocol/drain.ts';
import { AdvclipError } from '../core/errors.ts';
import { roundShapes } from '../protocol/task-codec.ts';
import { Worker, type WorkerSetup } from '../worker/worker.ts';
import type { BackendChoice } from '../core/backend.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import type { Logger } from './log.ts';
import { prepareTraining } from './run-setup.ts';
import { backendFlag, startBackend } from './runtime.ts';
import { trainSpecFrom } from './train-flags.ts';
import { clusterTokenFrom, metricsFlags, natsCredentialsFromEnv, securityFrom, tlsFlags } from './transport-flags.ts';

export const workerCommand: CommandSpec = {
  name: 'worker',
  summary: 'Compute training rounds for a coordinator',
  usage: 'advclip worker --coordinator HOST:PORT [--nats URL] [--metrics-port 9464] [--model DIR] [--data DIR] (--tls-ca F --tls-cert F --tls-key F | --insecure) [--name NAME]',
  flags: {
    coordinator: { type: 'string', arg: 'HOST:PORT', required: true, help: 'gRPC address of the coordinator' },
    nats: { type: 'string', arg: 'URL', help: 'NATS server for adapter versions (default: the coordinator’s; credentials: env NATS_USER with NATS_PASSWORD or NATS_PASSWORD_FILE)' },
    ...metricsFlags,
    model: { type: 'string', arg: 'DIR', help: 'HF CLIPModel directory or a Hub repo id owner/name[@revision], fetched into the HF cache (HF_HOME; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE=1) (default: the model in the run configuration)' },
    data: { type: 'string', arg: 'DIR', help: 'data set directory (default: the path in the run configuration)' },
    ...tlsFlags,
    name: { type: 'string', arg: 'NAME', help: 'name in the coordinator’s logs and metrics (default HOST-PID)' },
    backend: backendFlag,
    'grpc-keepalive-ms': { type: 'int', default: 20_000, help: 'advanced: ping the coordinator after this long without traffic (the ping timeout is 5 min, longer than a task computes)' },
  },
};

/** Test only: every task blocks the event loop this long, as a long synchronous compute does. */
const TEST_TASK_BLOCK_ENV = 'ADVCLIP_TEST_TASK_BLOCK_MS';

const packageVersion = (): string => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
};

/** Builds a worker's setup from the run configuration, with this worker's own --model/--data when given. */
export function workerSetupFrom(flags: FlagValues, backend: BackendChoice, log: Logger): (config: RunConfig) => Promise<WorkerSetup> {
  return async (config) => {
    const runFlags: FlagValues = { ...(config.flags as FlagValues), ...(flags.model ? { model: flags.model } : {}), ...(flags.data ? { data: flags.data } : {}) };
    const spec = trainSpecFrom(runFlags, config.sync as SyncMode);
    const setup = await prepareTraining(runFlags, spec, backend, log);
    const shard = new ShardComputer(setup.model, spec, setup.prompts, setup.source);
    return {
      shard,
      initial: setup.initial,
      shapes: roundShapes(setup.dir.config, setup.initial.sites, spec.lora.rank, setup.dataset.classNames.length),
      modelSha256: await modelSha256(setup.dir.files),
      trainSetSha256: trainSetSha256(setup.dataset.root, setup.trainSet),
      dispose: () => {
        shard.dispose();
        setup.model.dispose();
      },
    };
  };
}

export async function runWorker(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const security = securityFrom(flags);
  const backend = await startBackend(flags.backend, log);
  const name = (flags.name as string | undefined) ?? `${hostname()}-${process.pid}`;
  const wlog = log.child({ worker: name });
  const worker = await Worker.start({
    coordinator: flags.coordinator as string,
    security,
    clusterToken: clusterTokenFrom(flags),
    name,
    capabilities: {
      backend: backend.name,
      device: backend.name === 'node-gpu' ? 'gpu' : 'cpu',
      cores: availableParallelism(),
      modelSha256: flags.model ? await modelDirSha256(flags.model as string) : '',
      version: packageVersion(),
    },
    nats: { url: flags.nats as string | undefined, ...natsCredentialsFromEnv() },
    metrics: { port: flags['metrics-port'] as number, host: flags['metrics-host'] as string },
    log: wlog,
    prepare: workerSetupFrom(flags, backend, wlog),
    grpc: { keepaliveTimeMs: flags['grpc-keepalive-ms'] as number },
    testTaskBlockMs: Number(process.env[TEST_TASK_BLOCK_ENV]) || undefined,
  });
  wlog.info('ready', { id: worker.id, metrics: worker.metricsPort });
  const drain = (signal: string) => () => worker.drain(signal);
  const onTerm = drain('SIGTERM');
  const onInt = drain('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  try {
    await worker.done;
  } finally {
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
  }
  const reason = worker.coordinatorDrainReason;
  if (reason !== undefined && reason !== DrainReasons.runFinished) {
    throw new AdvclipError('UNAVAILABLE', `drained before the run ended (${reason}): exiting 1 so that the supervisor (compose, Kubernetes) starts this worker again to rejoin`);
  }
}
