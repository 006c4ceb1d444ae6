/**
 * `advclip cluster --workers N`: a whole cluster on this machine — a
 * coordinator in this process, N worker processes, a nats-server on
 * loopback with a coordinator and a worker user (unless --nats names one;
 * without a binary adapters go over gRPC), throwaway mTLS certificates
 * (unless --insecure) — trains, writes the outputs of `advclip train`, and
 * stops everything it started, on success, on failure and on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Coordinator } from '../coordinator/coordinator.ts';
import { AdvclipError, invalidArgument } from '../core/errors.ts';
import { NATS_WORKER_PERMISSIONS, startNatsServer, type NatsServer, type NatsUser } from '../protocol/nats-server.ts';
import { makeThrowawayCerts, type TlsFiles } from '../protocol/tls.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import { coordinatorFlags, distributedTrainFlags, serveTraining, type ServeOptions } from './coordinator.ts';
import type { Logger } from './log.ts';
import type { TrainSummary } from './train.ts';

const BIN = fileURLToPath(new URL('../../bin/advclip.mjs', import.meta.url));

export const clusterCommand: CommandSpec = {
  name: 'cluster',
  summary: 'Train on a local cluster: a coordinator, N worker processes, a loopback nats-server, mTLS',
  usage: 'advclip cluster --workers N --model DIR --data DIR [training flags of advclip train] [--sync exact|local-delta] [--nats URL] [--insecure] --out ADAPTER_DIR [--json]',
  flags: {
    workers: { type: 'int', default: 2, help: 'worker processes to start' },
    ...distributedTrainFlags,
    insecure: { type: 'boolean', help: 'plaintext gRPC instead of throwaway mTLS certificates (logs a warning)' },
    // serveTraining reads these; the coordinator's defaults apply
    'task-deadline-ms': coordinatorFlags['task-deadline-ms'],
    'task-deadline-factor': coordinatorFlags['task-deadline-factor'],
    'heartbeat-ms': coordinatorFlags['heartbeat-ms'],
  },
};

/** How long the workers get to start and join before training begins. */
const JOIN_TIMEOUT_MS = 120_000;

export async function runCluster(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const summary = await trainOnLocalCluster(flags, log);
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else log.info(`wrote ${summary.out}`, { final_loss: summary.final?.loss });
}

/** Starts the local cluster, trains, writes the outputs of `advclip train`, stops everything; the summary. `onStep`: serveTraining's. */
export async function trainOnLocalCluster(flags: FlagValues, log: Logger, options: Pick<ServeOptions, 'onStep'> = {}): Promise<TrainSummary> {
  const n = flags.workers as number;
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`--workers must be ≥ 1, got ${n}`);
  const cleanups: (() => Promise<void>)[] = [];
  const children: ChildProcess[] = [];
  const killAll = () => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    let natsUrl = flags.nats as string | undefined;
    let natsUsers: LocalNatsUsers | undefined;
    if (!natsUrl) {
      try {
        const users = localNatsUsers();
        const nats: NatsServer = await startNatsServer({ users: [users.coordinator, { ...users.worker, permissions: NATS_WORKER_PERMISSIONS }] });
        cleanups.push(() => nats.close());
        natsUrl = nats.url;
        natsUsers = users;
        log.info(`nats-server on ${nats.url}`, { auth: 'user/password; workers may not publish adapter versions' });
      } catch (err) {
        log.warn('no nats-server: adapters over gRPC', { reason: (err as Error).message.split(';')[0] });
      }
    }
    let tls: { server: TlsFiles; client: TlsFiles } | null = null;
    if (flags.insecure !== true) {
      const dir = await mkdtemp(join(tmpdir(), 'advclip-certs-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      tls = await makeThrowawayCerts(dir, 1);
    }
    const token = randomBytes(16).toString('hex');
    const coordinatorFlags: FlagValues = {
      ...flags,
      listen: '127.0.0.1:0',
      nats: natsUrl,
      'min-workers': 1,
      'cluster-token': token,
      ...(tls ? { 'tls-ca': tls.server.caPath, 'tls-cert': tls.server.certPath, 'tls-key': tls.server.keyPath } : {}),
    };
    const summary = await serveTraining(coordinatorFlags, log, {
      natsCredentials: natsUsers?.coordinator,
      summary: { workers: n },
      onStep: options.onStep,
      onListening: async (coordinator) => {
        const args = [
          ...(natsUrl ? ['--nats', natsUrl] : []),
          ...(tls ? ['--tls-ca', tls.client.caPath, '--tls-cert', tls.client.certPath, '--tls-key', tls.client.keyPath] : ['--insecure']),
          ...(typeof flags.backend === 'string' ? ['--backend', flags.backend] : []),
        ];
        const env = {
          ADVCLIP_CLUSTER_TOKEN: token,
          ...(natsUsers ? { NATS_USER: natsUsers.worker.user, NATS_PASSWORD: natsUsers.worker.password } : {}),
          // N workers share this machine's cores: the native products get their share each, not all of them
          ADVCLIP_NATIVE_THREADS: process.env.ADVCLIP_NATIVE_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / n))),
        };
        for (let i = 1; i <= n; i++) children.push(spawnWorker(i, coordinator, args, env, log));
        watchWorkers(children, coordinator, log);
        await waitForJoins(coordinator, n, children);
      },
    });
    return summary;
  } finally {
    await stopWorkers(children);
    process.removeListener('exit', killAll);
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => log.warn(`cleanup: ${(err as Error).message}`));
  }
}

interface LocalNatsUsers {
  readonly coordinator: NatsUser;
  readonly worker: NatsUser;
}

/** Fresh random passwords for the loopback nats-server's two users (deploy/nats/nats.conf's model). */
const localNatsUsers = (): LocalNatsUsers => ({
  coordinator: { user: 'advclip-coordinator', password: randomBytes(24).toString('base64url') },
  worker: { user: 'advclip-worker', password: randomBytes(24).toString('base64url') },
});

/** Secrets go to a worker through `env` (cluster token, NATS credentials), never its argv. */
function spawnWorker(i: number, coordinator: Coordinator, args: readonly string[], env: Readonly<Record<string, string>>, log: Logger): ChildProcess {
  const name = `worker-${i}`;
  // own process group: Ctrl-C reaches the coordinator, which drains the workers in order
  // by name, so TLS verifies the certificate's DNS name (an IP as server name is deprecated in Node's TLS)
  const address = coordinator.address.replace(/^127\.0\.0\.1:/, 'localhost:');
  const child = spawn(process.execPath, [BIN, 'worker', '--coordinator', address, '--metrics-port', '0', '--name', name, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  child.on('error', (err) => log.error(`${name} could not start: ${err.message}`));
  return child;
}

/** A worker that dies is logged; when none is left the run fails instead of waiting forever. */
function watchWorkers(children: readonly ChildProcess[], coordinator: Coordinator, log: Logger): void {
  for (const child of children) {
    child.once('exit', (code, signal) => {
      if (coordinator.state !== 'ready') return;
      log.warn(`a worker process exited during training (${signal ?? `code ${code}`})`);
      if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) {
        coordinator.abort(new AdvclipError('UNAVAILABLE', 'every worker process exited; see their log lines above'));
      }
    });
  }
}

async function waitForJoins(coordinator: Coordinator, n: number, children: readonly ChildProcess[]): Promise<void> {
  const until = Date.now() + JOIN_TIMEOUT_MS;
  while (coordinator.registry.live().length < n) {
    if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) throw new AdvclipError('UNAVAILABLE', 'every worker process exited before joining; see their log lines above');
    if (Date.now() > until) throw new AdvclipError('DEADLINE_EXCEEDED', `only ${coordinator.registry.live().length} of ${n} workers joined within ${JOIN_TIMEOUT_MS / 1000} s`);
    await Promise.race([coordinator.registry.nextEvent(), new Promise((r) => setTimeout(r, 250))]);
  }
}

/** Workers exit by themselves after the coordinator's Drain; stragglers are killed. */
async function stopWorkers(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const term = setTimeout(() => c.kill('SIGTERM'), 10_000);
          const kill = setTimeout(() => c.kill('SIGKILL'), 15_000);
          c.once('exit', () => {
            clearTimeout(term);
            clearTimeout(kill);
            resolve();
          });
        }),
    ),
  );
}
