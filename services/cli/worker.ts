/**
 * `advclip worker`: joins a coordinator, builds the run's setup from the
 * RunSpec it is given (with its own --model/--data paths when set),
 * computes tasks until the run ends (exit 0) or SIGTERM drains it.
 */
import { availableParallelism, hostname } from 'node:os';
import { modelDirSha256 } from '../io/model-hash.ts';
import type { Logger } from '../protocol/log.ts';
import { startBackend } from '../run/backend.ts';
import { workerSetupFrom } from '../run/worker-setup.ts';
import { MAX_REPLICAS, startReplicas } from '../worker/replicas.ts';
import { AdvclipError } from '../core/errors.ts';
import { DrainReasons } from '../protocol/drain.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import { packageVersion } from './version.ts';
import { backendFlag } from './train-flags.ts';
import { clusterTokenFrom, metricsFlags, natsCredentialsFromEnv, natsTlsFlags, natsTlsFrom, securityFrom, tlsFlags } from './transport-flags.ts';

export const workerCommand: CommandSpec = {
  name: 'worker',
  summary: 'Compute training rounds for a coordinator',
  usage: 'advclip worker --coordinator HOST:PORT [--nats URL [--nats-ca F]] [--metrics-port 9464] [--model DIR] [--data DIR] (--tls-ca F --tls-cert F --tls-key F | --insecure) [--name NAME] [--replicas K]',
  flags: {
    coordinator: { type: 'string', arg: 'HOST:PORT', required: true, help: 'gRPC address of the coordinator' },
    nats: { type: 'string', arg: 'URL', help: 'NATS server for adapter versions, nats:// or tls:// (default: the coordinator’s; credentials: env NATS_USER with NATS_PASSWORD or NATS_PASSWORD_FILE)' },
    ...natsTlsFlags,
    ...metricsFlags,
    model: { type: 'string', arg: 'DIR', help: 'HF CLIPModel directory or a Hub repo id owner/name[@revision], fetched into the HF cache (HF_HOME; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE=1) (default: the model in the run’s RunSpec)' },
    data: { type: 'string', arg: 'DIR', help: 'data set directory (default: the path in the run’s RunSpec)' },
    ...tlsFlags,
    name: { type: 'string', arg: 'NAME', help: 'name in the coordinator’s logs and metrics (default HOST-PID)' },
    replicas: { type: 'int', default: 1, arg: 'K', help: `workers this process hosts (1–${MAX_REPLICAS}), each registered on its own (NAME-1…NAME-K, metrics on --metrics-port, +1, …), sharing the loaded model and data; their tasks take turns on this process's cores` },
    backend: backendFlag,
    'connect-timeout-ms': { type: 'int', default: 0, arg: 'MS', help: 'give up when the coordinator has not answered Register for this long (0: keep trying, with backoff and a log line every 30 s; a worker may start before its coordinator)' },
    'grpc-keepalive-ms': { type: 'int', default: 20_000, help: 'advanced: ping the coordinator after this long without traffic (the ping timeout is 5 min, longer than a task computes)' },
  },
};

/** Test only: every task blocks the event loop this long, as a long synchronous compute does. */
const TEST_TASK_BLOCK_ENV = 'ADVCLIP_TEST_TASK_BLOCK_MS';

export async function runWorker(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const security = securityFrom(flags);
  const backend = await startBackend(flags.backend as string | undefined, log);
  const name = (flags.name as string | undefined) ?? `${hostname()}-${process.pid}`;
  const wlog = log.child({ worker: name });
  const replicas = flags.replicas as number;
  const pool = await startReplicas(
    {
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
      nats: { url: flags.nats as string | undefined, ...natsCredentialsFromEnv(), tls: natsTlsFrom(flags) },
      metrics: { port: flags['metrics-port'] as number, host: flags['metrics-host'] as string },
      log: wlog,
      prepare: workerSetupFrom({ model: flags.model as string | undefined, data: flags.data as string | undefined }, backend, wlog),
      grpc: { keepaliveTimeMs: flags['grpc-keepalive-ms'] as number },
      connectTimeoutMs: (flags['connect-timeout-ms'] as number) > 0 ? (flags['connect-timeout-ms'] as number) : undefined,
      testTaskBlockMs: Number(process.env[TEST_TASK_BLOCK_ENV]) || undefined,
    },
    replicas,
  );
  if (replicas === 1) wlog.info('ready', { id: pool.workers[0].id, metrics: pool.workers[0].metricsPort });
  else wlog.info(`${replicas} replicas ready`, { ids: pool.workers.map((w) => w.id), metrics: pool.workers.map((w) => w.metricsPort) });
  const drain = (signal: string) => () => pool.drain(signal);
  const onTerm = drain('SIGTERM');
  const onInt = drain('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  try {
    await pool.done;
  } finally {
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
  }
  // a replica the coordinator drained before the run ended makes the process exit 1, so its supervisor restarts it
  const reason = pool.workers.map((w) => w.coordinatorDrainReason).find((r) => r !== undefined && r !== DrainReasons.runFinished);
  if (reason !== undefined) {
    throw new AdvclipError('UNAVAILABLE', `drained before the run ended (${reason}): exiting 1 so that the supervisor (compose, Kubernetes) starts this worker again to rejoin`);
  }
}
