/**
 * K protocol-complete workers in one process (`advclip worker --replicas K`),
 * the way Flower simulates many clients on one machine: each replica is a
 * whole Worker — its own registration, Work stream, heartbeats, adapter
 * versions, metrics endpoint and failure behaviour — but they share one
 * setup of the run (the loaded model, the decoded data, the class text
 * features of a step), built once for a RunSpec and disposed when the last
 * replica using it stops. One process computes one task at a time anyway
 * (tfjs runs on its thread): the replicas' tasks take turns on the shared
 * ShardComputer, so none sees another's cached tensors change under it.
 * Between turns the process reads its sockets, so a task that arrives while
 * a sibling computes is taken in at once and waits for its turn inside its
 * compute time (compute_ms of a replica includes waiting for the cores its
 * siblings hold), not unseen in the socket.
 */
import { invalidArgument } from '../core/errors.ts';
import type { RunSpec__Output } from '../protocol/generated/advclip/v1/RunSpec.ts';
import { Worker, type RunPreparer, type WorkerOptions, type WorkerSetup } from './worker.ts';

/**
 * Resolves after the event loop has polled for I/O once: a turn starts only
 * after the messages that arrived during the last one (a sibling's task, a
 * heartbeat) are read and the results written, not behind the next compute.
 */
const afterIoPoll = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

/** Most replicas one process hosts: each holds sockets, timers and an HTTP endpoint. */
export const MAX_REPLICAS = 256;

/**
 * A preparer whose setups are built once per RunSpec and shared (a sweep
 * gives the replicas several runs); tasks on them run one at a time.
 */
export function sharedPreparer(inner: RunPreparer): RunPreparer {
  const held = new Map<string, { setup: Promise<WorkerSetup>; refs: number }>();
  let turn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(work: () => Promise<T>): Promise<T> => {
    const next = turn.then(afterIoPoll).then(work);
    turn = next.catch(() => undefined);
    return next;
  };
  return {
    specVersion: inner.specVersion,
    async setup(spec: RunSpec__Output | null): Promise<WorkerSetup> {
      const key = JSON.stringify(spec);
      let entry = held.get(key);
      if (!entry) {
        entry = { setup: inner.setup(spec), refs: 0 };
        held.set(key, entry);
      }
      const mine = entry;
      mine.refs++;
      let base: WorkerSetup;
      try {
        base = await mine.setup;
      } catch (err) {
        mine.refs--;
        if (held.get(key) === mine) held.delete(key);
        throw err;
      }
      let released = false;
      return {
        shard: { compute: (task, adapter, version) => inTurn(() => base.shard.compute(task, adapter, version)) },
        initial: base.initial,
        shapes: base.shapes,
        dispose: () => {
          if (released) return;
          released = true;
          if (--mine.refs > 0) return;
          if (held.get(key) === mine) held.delete(key);
          base.dispose();
        },
      };
    },
  };
}

/** The name of replica `i` (1-based) of `k`: the process's name alone when it hosts one. */
export const replicaName = (name: string, i: number, k: number): string => (k === 1 ? name : `${name}-${i}`);

/** Replica i's metrics port: 0 stays any free port; a fixed port P gives P, P+1, … */
export const replicaMetricsPort = (port: number, i: number): number => (port === 0 ? 0 : port + i - 1);

/** The replicas of one process; `done` settles when all have stopped (rejected with the first failure). */
export interface WorkerReplicas {
  readonly workers: readonly Worker[];
  readonly done: Promise<void>;
  drain(reason: string): void;
  close(): Promise<void>;
}

/** Starts `k` workers sharing one setup; replica i is named NAME-i and serves metrics on replicaMetricsPort. */
export async function startReplicas(o: WorkerOptions, k: number): Promise<WorkerReplicas> {
  if (!Number.isInteger(k) || k < 1 || k > MAX_REPLICAS) throw invalidArgument(`--replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${k}`);
  const prepare = k === 1 ? o.prepare : sharedPreparer(o.prepare);
  const started = await Promise.allSettled(
    Array.from({ length: k }, (_, j) =>
      Worker.start({
        ...o,
        name: replicaName(o.name, j + 1, k),
        prepare,
        metrics: { ...o.metrics, port: replicaMetricsPort(o.metrics.port, j + 1) },
        log: k === 1 ? o.log : o.log.child({ replica: j + 1 }),
      }),
    ),
  );
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(workers.map((w) => w.close()));
    throw failed.reason;
  }
  const done = Promise.allSettled(workers.map((w) => w.done)).then((settled) => {
    const first = settled.find((s) => s.status === 'rejected');
    if (first) throw first.reason;
  });
  done.catch(() => undefined);
  return {
    workers,
    done,
    drain: (reason) => workers.forEach((w) => w.drain(reason)),
    close: async () => void (await Promise.all(workers.map((w) => w.close()))),
  };
}
