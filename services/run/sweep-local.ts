/**
 * A sweep on a pool of this machine (`advclip sweep --workers N`): the
 * sweep's coordinator in this process and N workers started the way
 * `advclip cluster` starts them (local-cluster.ts: one process each up to
 * the cores, replicas beyond; throwaway mTLS unless --insecure; a fresh
 * cluster token). No nats-server: a sweep's adapter versions go over gRPC.
 * Everything started is stopped, on success, on failure and on Ctrl-C.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { invalidArgument } from '../core/errors.ts';
import type { Logger } from '../protocol/log.ts';
import { makeThrowawayCerts } from '../protocol/tls.ts';
import { spawnWorker, stopWorkers, waitForJoins, watchWorkers, workerProcesses } from './local-cluster.ts';
import { runSweep, type SweepHooks, type SweepOptions, type SweepSummary } from './sweep.ts';

export interface LocalSweepOptions extends Omit<SweepOptions, 'listen' | 'security' | 'clusterToken' | 'identities'> {
  readonly workers: number;
  readonly insecure: boolean;
}

export async function sweepOnLocalPool(o: LocalSweepOptions, log: Logger, hooks: Pick<SweepHooks, 'onRunEnd'> = {}): Promise<SweepSummary & { workers: number }> {
  const n = o.workers;
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`--workers must be ≥ 1, got ${n}`);
  const plan = workerProcesses(n, availableParallelism());
  const children: ChildProcess[] = [];
  const killAll = () => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  process.once('exit', killAll);
  const certsDir = o.insecure ? null : await mkdtemp(join(tmpdir(), 'advclip-certs-'));
  try {
    const tls = certsDir ? await makeThrowawayCerts(certsDir, 1, plan.length) : null;
    const token = randomBytes(16).toString('hex');
    const summary = await runSweep(
      { ...o, listen: '127.0.0.1:0', security: tls ? { mode: 'mtls', ...tls.server } : { mode: 'insecure' }, clusterToken: token },
      log,
      {
        ...hooks,
        workers: n,
        onListening: async (pool) => {
          const env = {
            ADVCLIP_CLUSTER_TOKEN: token,
            ADVCLIP_NATIVE_THREADS: process.env.ADVCLIP_NATIVE_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / plan.length))),
          };
          const tlsArgs = (i: number) => {
            const files = tls?.workers[i - 1];
            return files ? ['--tls-ca', files.caPath, '--tls-cert', files.certPath, '--tls-key', files.keyPath] : ['--insecure'];
          };
          const args = [...(o.backend ? ['--backend', o.backend] : [])];
          plan.forEach((replicas, i) => children.push(spawnWorker(i + 1, replicas, pool, [...args, ...tlsArgs(i + 1)], env, log)));
          watchWorkers(children, pool, log);
          await waitForJoins(pool, n, children);
        },
      },
    );
    return { ...summary, workers: n };
  } finally {
    await stopWorkers(children);
    process.removeListener('exit', killAll);
    if (certsDir) await rm(certsDir, { recursive: true, force: true });
  }
}
