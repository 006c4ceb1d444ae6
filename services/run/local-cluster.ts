/**
 * A whole cluster on this machine (`advclip cluster --workers N`) — a
 * coordinator in this process, N workers (one process each while N fits
 * the cores; beyond, one process per core hosting N/cores replicas each,
 * replicas.ts), a nats-server on
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
import type { DeadlineOptions } from '../coordinator/remote-executor.ts';
import { AdvclipError, invalidArgument } from '../core/errors.ts';
import type { Logger } from '../protocol/log.ts';
import { NATS_WORKER_PERMISSIONS, startNatsServer, type NatsServer, type NatsUser } from '../protocol/nats-server.ts';
import { makeThrowawayCerts, type TlsFiles } from '../protocol/tls.ts';
import { serveTraining, type ServeHooks } from './serve.ts';
import type { RunSpec } from './spec.ts';
import type { TrainSummary } from './steps.ts';

const BIN = fileURLToPath(new URL('../../bin/advclip.mjs', import.meta.url));

/** How long the workers get to start and join before training begins. */
const JOIN_TIMEOUT_MS = 120_000;

/** A run on a cluster of this machine: the RunSpec, its outputs, and how the cluster is made. */
export interface LocalClusterOptions {
  readonly run: RunSpec;
  readonly out: string;
  readonly json: boolean;
  readonly backend?: string;
  /** workers to start (replicas of fewer processes when they outnumber the cores) */
  readonly workers: number;
  /** an external NATS server; absent: a loopback nats-server when one is installed */
  readonly natsUrl?: string;
  /** plaintext gRPC instead of throwaway mTLS certificates */
  readonly insecure: boolean;
  readonly metrics: { readonly port: number; readonly host?: string };
  readonly deadline: DeadlineOptions;
  readonly heartbeatIntervalMs: number;
}

/** Starts the local cluster, trains, writes the outputs of `advclip train`, stops everything; the summary. `onStep`: serveTraining's. */
export async function trainOnLocalCluster(o: LocalClusterOptions, log: Logger, hooks: Pick<ServeHooks, 'onStep'> = {}): Promise<TrainSummary> {
  const n = o.workers;
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`--workers must be ≥ 1, got ${n}`);
  const cleanups: (() => Promise<void>)[] = [];
  const children: ChildProcess[] = [];
  const killAll = () => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    let natsUrl = o.natsUrl;
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
    const plan = workerProcesses(n, availableParallelism());
    let tls: { server: TlsFiles; workers: readonly TlsFiles[] } | null = null;
    if (!o.insecure) {
      const dir = await mkdtemp(join(tmpdir(), 'advclip-certs-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      tls = await makeThrowawayCerts(dir, 1, plan.length);
    }
    const token = randomBytes(16).toString('hex');
    const coordinatorRun = {
      run: o.run,
      out: o.out,
      checkpoints: null,
      json: o.json,
      backend: o.backend,
      listen: '127.0.0.1:0',
      security: tls ? ({ mode: 'mtls', ...tls.server } as const) : ({ mode: 'insecure' } as const),
      clusterToken: token,
      nats: natsUrl ? { url: natsUrl, ...(natsUsers?.coordinator ?? {}) } : undefined,
      metrics: o.metrics,
      minWorkers: 1,
      deadline: o.deadline,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
    };
    return await serveTraining(coordinatorRun, log, {
      summary: { workers: n },
      onStep: hooks.onStep,
      onListening: async (coordinator) => {
        const args = [
          ...(natsUrl ? ['--nats', natsUrl] : []),
          ...(o.backend ? ['--backend', o.backend] : []),
        ];
        const env = {
          ADVCLIP_CLUSTER_TOKEN: token,
          ...(natsUsers ? { NATS_USER: natsUsers.worker.user, NATS_PASSWORD: natsUsers.worker.password } : {}),
          // N workers share this machine's cores: the native products get their share each, not all of them
          ADVCLIP_NATIVE_THREADS: process.env.ADVCLIP_NATIVE_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / plan.length))),
        };
        if (plan.length < n) log.info(`${n} workers as replicas of ${plan.length} processes (${availableParallelism()} cores)`, { replicas: plan });
        // each worker process its own certificate: its identity (quarantine binds to it; replicas of a process share it)
        const tlsArgs = (i: number) => {
          const files = tls?.workers[i - 1];
          return files ? ['--tls-ca', files.caPath, '--tls-cert', files.certPath, '--tls-key', files.keyPath] : ['--insecure'];
        };
        plan.forEach((replicas, i) => children.push(spawnWorker(i + 1, replicas, coordinator, [...args, ...tlsArgs(i + 1)], env, log)));
        watchWorkers(children, coordinator, log);
        await waitForJoins(coordinator, n, children);
      },
    });
  } finally {
    await stopWorkers(children);
    process.removeListener('exit', killAll);
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => log.warn(`cleanup: ${(err as Error).message}`));
  }
}

/** What local worker processes join: a run's coordinator, or a sweep's pool (run/sweep-pool.ts). */
export type LocalWorkerTarget = Pick<Coordinator, 'address' | 'registry' | 'state' | 'abort'>;

interface LocalNatsUsers {
  readonly coordinator: NatsUser;
  readonly worker: NatsUser;
}

/** Fresh random passwords for the loopback nats-server's two users (deploy/nats/nats.conf's model). */
const localNatsUsers = (): LocalNatsUsers => ({
  coordinator: { user: 'advclip-coordinator', password: randomBytes(24).toString('base64url') },
  worker: { user: 'advclip-worker', password: randomBytes(24).toString('base64url') },
});

/** Replicas per worker process: one process per worker up to `cores`, beyond that `cores` processes sharing the workers evenly. */
export function workerProcesses(workers: number, cores: number): number[] {
  const processes = Math.min(workers, Math.max(1, cores));
  return Array.from({ length: processes }, (_, i) => Math.floor(workers / processes) + (i < workers % processes ? 1 : 0));
}

/** Secrets go to a worker through `env` (cluster token, NATS credentials), never its argv. */
export function spawnWorker(i: number, replicas: number, coordinator: LocalWorkerTarget, args: readonly string[], env: Readonly<Record<string, string>>, log: Logger): ChildProcess {
  const name = `worker-${i}`;
  // own process group: Ctrl-C reaches the coordinator, which drains the workers in order
  // by name, so TLS verifies the certificate's DNS name (an IP as server name is deprecated in Node's TLS)
  const address = coordinator.address.replace(/^127\.0\.0\.1:/, 'localhost:');
  const child = spawn(process.execPath, [BIN, 'worker', '--coordinator', address, '--metrics-port', '0', '--name', name, ...(replicas > 1 ? ['--replicas', String(replicas)] : []), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  child.on('error', (err) => log.error(`${name} could not start: ${err.message}`));
  return child;
}

/** A worker that dies is logged; when none is left the run fails instead of waiting forever. */
export function watchWorkers(children: readonly ChildProcess[], coordinator: LocalWorkerTarget, log: Logger): void {
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

export async function waitForJoins(coordinator: LocalWorkerTarget, n: number, children: readonly ChildProcess[]): Promise<void> {
  const until = Date.now() + JOIN_TIMEOUT_MS;
  while (coordinator.registry.live().length < n) {
    if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) throw new AdvclipError('UNAVAILABLE', 'every worker process exited before joining; see their log lines above');
    if (Date.now() > until) throw new AdvclipError('DEADLINE_EXCEEDED', `only ${coordinator.registry.live().length} of ${n} workers joined within ${JOIN_TIMEOUT_MS / 1000} s`);
    await Promise.race([coordinator.registry.nextEvent(), new Promise((r) => setTimeout(r, 250))]);
  }
}

/** Workers exit by themselves after the coordinator's Drain; stragglers are killed. */
export async function stopWorkers(children: readonly ChildProcess[]): Promise<void> {
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
