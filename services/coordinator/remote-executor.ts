/**
 * The step driver's Executor over the cluster: the same contract as the
 * single-process one (services/core/local-executor.ts). For each round it
 * makes the adapter version available, assigns whole chunks to the live
 * workers by measured throughput (assign.ts), sends each its Task, checks
 * every result against the round (task-codec.ts), and hands chunks of a
 * worker that fails, disconnects, answers wrongly or misses its deadline
 * to the others. Chunk results come back in chunk order, so the step is
 * the same whoever computed what. It also adds up what each step's rounds
 * cost (RoundCosts): time outside the workers' compute, bytes on the wire.
 */
import { AdvclipError } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import { imageSamplesOf, textRoundChunks, type Chunk, type ChunkResult, type RoundTask } from '../core/shard.ts';
import { Purpose, RandomStream } from '../core/rng.ts';
import { RedoStep, type ExecutedRound, type Executor, type Share } from '../core/trainer.ts';
import type { TaskError__Output } from '../protocol/generated/advclip/v1/TaskError.ts';
import type { TaskResult__Output } from '../protocol/generated/advclip/v1/TaskResult.ts';
import { decodeResult, encodeTask, InvalidResult, type RejectReason, type RoundShapes } from '../protocol/task-codec.ts';
import type { AdapterBlob } from '../protocol/adapter-blob.ts';
import type { WireMessage } from '../protocol/wire-meter.ts';
import type { AdapterVersions } from './adapter-versions.ts';
import { assignChunks } from './assign.ts';
import type { WorkerRegistry, WorkerSession } from './worker-registry.ts';

export interface DeadlineOptions {
  /** the shortest deadline of a task */
  readonly minMs: number;
  /** deadline = max(minMs, factor × samples / measured samples/s) */
  readonly factor: number;
  /** for a worker not measured yet (its first task includes warm-up) */
  readonly unmeasuredMs: number;
}

export const DEFAULT_DEADLINE: DeadlineOptions = Object.freeze({ minMs: 30_000, factor: 20, unmeasuredMs: 300_000 });

export interface ExecutorEvents {
  /** a result was accepted: `samples` of it count for the worker */
  accepted(workerId: string, samples: number): void;
  /** a result was refused (see RejectReasons); `badResults`: the worker's count that flags it (0 for stale) */
  rejected(workerId: string, reason: string, badResults: number): void;
  /** fewer than the minimum of workers are live (true) or they are back (false) */
  waiting(waiting: boolean, live: number): void;
  /** `chunks` results were recomputed on a second worker and compared */
  verified(chunks: number): void;
  /** a third computation showed the worker's result wrong; it is quarantined */
  caught(workerId: string, detail: string): void;
}

export interface RemoteExecutorOptions {
  readonly registry: WorkerRegistry;
  readonly versions: AdapterVersions;
  readonly shapes: RoundShapes;
  readonly seed: number;
  readonly minWorkers: number;
  readonly deadline?: DeadlineOptions;
  /** attempts at the same chunks before the step fails */
  readonly maxAttempts?: number;
  /** exact mode: the seeded share of each round's chunks recomputed on a second worker (0: none) */
  readonly verifyFraction?: number;
  readonly events: ExecutorEvents;
  readonly warn: (message: string, fields?: Record<string, unknown>) => void;
  /** a sweep's run (Task.run_id, and the prefix `RUN/` of its task ids, so runs sharing a pool never collide); absent: the coordinator's own run */
  readonly runId?: string;
}

/** What a step's rounds cost, summed over them: where their wall time went (ms) and what they put on the wire. */
export interface RoundCosts {
  /** rounds run */
  rounds: number;
  /** of networkMs: making the adapter version available (publish to NATS), once per version */
  publishMs: number;
  /** of networkMs: encoding the Task messages */
  encodeMs: number;
  /** of networkMs: checking and decoding the results */
  decodeMs: number;
  /** the slowest worker's compute time, per round */
  computeMs: number;
  /** the slowest worker's whole task (decode, adapter fetch, compute, encode), per round */
  taskMs: number;
  /** the rest of the rounds' time: transfer, encoding and decoding at both ends, queueing, adapter fetches */
  networkMs: number;
  /** waiting for the minimum of workers */
  waitMs: number;
  /** wall time of the rounds */
  roundsMs: number;
  /** protobuf bytes of the Task messages sent (wire-meter.ts) */
  sentBytes: number;
  /** protobuf bytes of the TaskResult and TaskError messages received */
  receivedBytes: number;
}

type Outcome = { readonly ok: true; readonly result: ReturnType<typeof decodeResult> } | { readonly ok: false; readonly reason: string; readonly detail: string };

interface Pending {
  readonly workerId: string;
  readonly task: RoundTask;
  settle(outcome: Outcome): void;
}

/** Is the chunk one of the seeded `fraction` of its round that is computed twice? */
export const verifiedChunk = (seed: number, task: RoundTask, index: number, fraction: number): boolean =>
  fraction >= 1 || (fraction > 0 && RandomStream.of(seed, Purpose.verify, task.step, task.round, index).uniform() < fraction);

/** Bit for bit the same result: counts, loss sums and every gradient's bytes. */
export function sameBits(a: ChunkResult, b: ChunkResult): boolean {
  if (a.index !== b.index || a.count !== b.count || a.correct !== b.correct || !Object.is(a.advLossSum, b.advLossSum) || !Object.is(a.cleanLossSum, b.cleanLossSum)) return false;
  if (a.grads.size !== b.grads.size) return false;
  for (const [name, x] of a.grads) {
    const y = b.grads.get(name);
    if (!y || !Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return false;
  }
  return true;
}

const zeroCosts = (): RoundCosts => ({ rounds: 0, publishMs: 0, encodeMs: 0, decodeMs: 0, taskMs: 0, computeMs: 0, networkMs: 0, waitMs: 0, roundsMs: 0, sentBytes: 0, receivedBytes: 0 });

export class RemoteExecutor {
  readonly #o: RemoteExecutorOptions;
  readonly #deadline: DeadlineOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #offLost: () => void;
  #seq = 0;
  #costs = zeroCosts();
  #aborted: AdvclipError | null = null;
  /** the step in progress, and the workers whose results its finished rounds used */
  #step = -1;
  readonly #usedThisStep = new Set<string>();
  #wakeAbort: (() => void) | null = null;

  constructor(options: RemoteExecutorOptions) {
    this.#o = options;
    this.#deadline = options.deadline ?? DEFAULT_DEADLINE;
    this.#offLost = options.registry.onEvent((e) => {
      if (e.kind !== 'lost') return;
      for (const p of [...this.#pending.values()]) {
        if (p.workerId === e.session.id) p.settle({ ok: false, reason: 'worker_lost', detail: e.reason });
      }
    });
  }

  readonly execute: Executor = async (task, lora, version, options) => (options?.replicated ? this.#replicatedRound(task, lora, version) : this.#round(task, lora, version));

  /** Has the worker a task out? (Its heartbeats may pause while it computes.) */
  busy(workerId: string): boolean {
    for (const p of this.#pending.values()) if (p.workerId === workerId) return true;
    return false;
  }

  /** The step's costs so far, and a fresh count. */
  takeCosts(): RoundCosts {
    const t = this.#costs;
    this.#costs = zeroCosts();
    return t;
  }

  /**
   * A message the coordinator's gRPC server sent or received: the rounds' own
   * ones count (tasks out, results and task errors back, late or refused ones
   * too: they crossed the wire); heartbeats and adapter traffic do not.
   */
  countWire(m: WireMessage): void {
    if (m.direction === 'sent' && m.message === 'task') this.#costs.sentBytes += m.bytes;
    if (m.direction === 'received' && (m.message === 'result' || m.message === 'error')) this.#costs.receivedBytes += m.bytes;
  }

  onResult(workerId: string, message: TaskResult__Output): void {
    const p = this.#pending.get(message.task_id);
    if (!p) {
      this.#reject(workerId, 'stale');
      return;
    }
    if (p.workerId !== workerId) {
      this.#reject(workerId, 'wrong_worker');
      return;
    }
    try {
      const t0 = performance.now();
      const result = decodeResult(message, p.task, this.#o.shapes);
      this.#costs.decodeMs += performance.now() - t0;
      p.settle({ ok: true, result });
    } catch (err) {
      const reason = err instanceof InvalidResult ? err.reason : 'malformed';
      // settled first: the chunks are reassigned even when the flag excludes the worker
      p.settle({ ok: false, reason, detail: (err as Error).message });
      this.#reject(workerId, reason);
    }
  }

  /** A stale answer may just be late; any other refusal counts against the worker (the registry excludes it at its limit). */
  #reject(workerId: string, reason: RejectReason): void {
    const badResults = reason === 'stale' ? 0 : this.#o.registry.flagBadResult(workerId, reason);
    this.#o.events.rejected(workerId, reason, badResults);
  }

  onError(workerId: string, message: TaskError__Output): void {
    const p = this.#pending.get(message.task_id);
    if (p && p.workerId === workerId) p.settle({ ok: false, reason: 'task_error', detail: `${message.code}: ${message.message}` });
  }

  /** Fails the round in progress and every later one (shutdown, or no workers can come). */
  abort(error: AdvclipError): void {
    this.#aborted ??= error;
    for (const p of [...this.#pending.values()]) p.settle({ ok: false, reason: 'aborted', detail: error.message });
    this.#wakeAbort?.();
  }

  close(): void {
    this.#offLost();
    this.abort(new AdvclipError('UNAVAILABLE', 'the coordinator is shutting down'));
  }

  async #round(task: RoundTask, lora: LoraWeights, version: number): Promise<ExecutedRound> {
    const started = performance.now();
    const adapter = await this.#o.versions.ensure(lora, version);
    this.#costs.publishMs += performance.now() - started;
    const chunks = new Map<number, ChunkResult>();
    const owner = new Map<number, string>();
    const shares: (Share & { first: number })[] = [];
    let slowestCompute = 0;
    let slowestTask = 0;
    let waitMs = 0;
    const maxAttempts = this.#o.maxAttempts ?? 8;

    const runPart = async (part: readonly Chunk[], avoid: ReadonlySet<string>, attempt: number): Promise<void> => {
      const waitStart = performance.now();
      const workers = await this.#workersFor(avoid);
      waitMs += performance.now() - waitStart;
      const plan = assignChunks(part, workers.map((w) => ({ id: w.id, samplesPerSecond: w.samplesPerSecond })));
      await Promise.all(
        plan.map(async ({ workerId, chunks: mine }) => {
          const worker = this.#o.registry.get(workerId);
          const sub: RoundTask = { ...task, chunks: mine };
          const outcome: Outcome = worker ? await this.#attempt(worker, sub, adapter) : { ok: false, reason: 'worker_lost', detail: 'left before its task was sent' };
          if (outcome.ok) {
            const r = outcome.result;
            for (const c of r.chunks) {
              chunks.set(c.index, c);
              owner.set(c.index, workerId);
            }
            shares.push({ worker: workerId, chunks: r.chunks, localDelta: r.localDelta, first: Math.min(...mine.map((c) => c.index)) });
            slowestCompute = Math.max(slowestCompute, r.timing.compute_ms);
            slowestTask = Math.max(slowestTask, r.timing.total_ms);
            this.#o.events.accepted(workerId, imageSamplesOf(sub));
            return;
          }
          if (this.#aborted) throw this.#aborted;
          const where = `step ${task.step} round ${task.round} (${task.kind}) ${mine.length ? `chunks ${mine.map((c) => c.index).join(',')}` : ''}`;
          if (attempt + 1 >= maxAttempts) {
            throw new AdvclipError('UNAVAILABLE', `${where}: failed ${maxAttempts} times, last on worker ${workerId} (${outcome.reason}: ${outcome.detail})`);
          }
          this.#o.warn(`${where}: worker ${workerId} did not deliver (${outcome.reason}); reassigning`, { detail: outcome.detail });
          await runPart(mine, new Set([...avoid, workerId]), attempt + 1);
        }),
      );
    };

    // a text round's chunks are class groups: spread over the workers like image chunks
    const all = task.kind === 'text' ? textRoundChunks(task, this.#o.shapes.textFeatures[0]) : task.chunks;
    if (task.step !== this.#step) {
      this.#step = task.step;
      this.#usedThisStep.clear();
    }
    await runPart(all, new Set(), 0);
    const fraction = this.#o.verifyFraction ?? 0;
    if (fraction > 0 && task.kind !== 'local-delta') {
      const wrong = await this.#verify(task, adapter, all.filter((c) => verifiedChunk(this.#o.seed, task, c.index, fraction)), chunks, owner);
      if (wrong.size) {
        // the round's other results of a wrong worker are computed again, by the others
        const redo = all.filter((c) => wrong.has(owner.get(c.index)!));
        if (redo.length) await runPart(redo, wrong, 0);
        const earlier = [...wrong].filter((w) => this.#usedThisStep.has(w));
        if (earlier.length) throw new RedoStep(`worker ${earlier.join(', ')} sent wrong results, and an earlier round of step ${task.step} used its results`);
      }
    }
    for (const w of owner.values()) this.#usedThisStep.add(w);
    const ordered = [...chunks.values()].sort((a, b) => a.index - b.index);
    if (ordered.length !== all.length) throw new AdvclipError('INTERNAL', `round ${task.round}: ${ordered.length} of ${all.length} chunks collected`);
    this.#addCosts(started, slowestCompute, slowestTask, waitMs);
    const inOrder: Share[] = shares.sort((a, b) => a.first - b.first).map(({ worker, chunks: c, localDelta }) => ({ worker, chunks: c, localDelta }));
    return { chunks: ordered, localDeltas: inOrder.flatMap((s) => (s.localDelta ? [s.localDelta] : [])), shares: inOrder };
  }

  /**
   * Recomputes `picked` chunks on a second worker of the same backend kind
   * than the one that computed each, and compares the bits; on a mismatch a
   * third worker computes the chunk and the one it contradicts is
   * quarantined. `chunks` ends with the agreed results. The wrong workers.
   */
  async #verify(task: RoundTask, adapter: AdapterBlob, picked: readonly Chunk[], chunks: Map<number, ChunkResult>, owner: ReadonlyMap<number, string>): Promise<Set<string>> {
    const wrong = new Set<string>();
    const byOwner = new Map<string, Chunk[]>();
    for (const c of picked) byOwner.set(owner.get(c.index)!, [...(byOwner.get(owner.get(c.index)!) ?? []), c]);
    const where = `step ${task.step} round ${task.round} (${task.kind})`;
    const computeOn = async (workerId: string, part: readonly Chunk[]): Promise<readonly ChunkResult[] | null> => {
      const w = this.#o.registry.get(workerId);
      if (!w) return null;
      const outcome = await this.#attempt(w, { ...task, chunks: part }, adapter);
      if (outcome.ok) return outcome.result.chunks;
      this.#o.warn(`${where}: worker ${workerId} did not deliver a verification (${outcome.reason})`, { detail: outcome.detail });
      return null;
    };
    const catchWorker = (workerId: string, detail: string) => {
      if (wrong.has(workerId)) return;
      wrong.add(workerId);
      this.#o.events.caught(workerId, detail);
      this.#o.registry.quarantine(workerId, `${where}: ${detail}`);
    };
    await Promise.all(
      [...byOwner].map(async ([first, part]) => {
        const second = this.#peerOf(first, []);
        if (!second) {
          this.#o.warn(`${where}: no second worker of backend ${this.#backendOf(first)} to verify chunks ${part.map((c) => c.index).join(',')}`);
          return;
        }
        const again = await computeOn(second, part);
        if (!again) return;
        this.#o.events.verified(again.length);
        for (const b of again) {
          const a = chunks.get(b.index)!;
          if (sameBits(a, b)) continue;
          const third = this.#peerOf(first, [second]);
          const decided = third ? (await computeOn(third, part.filter((c) => c.index === b.index)))?.[0] : undefined;
          if (!third || !decided) throw new AdvclipError('UNAVAILABLE', `${where} chunk ${b.index}: workers ${first} and ${second} computed different bits and no third worker of their backend could decide`);
          if (sameBits(decided, b)) {
            chunks.set(b.index, b);
            catchWorker(first, `chunk ${b.index} differs from ${second}'s and ${third}'s`);
          } else if (sameBits(decided, a)) {
            catchWorker(second, `chunk ${b.index} differs from ${first}'s and ${third}'s`);
          } else {
            throw new AdvclipError('INTERNAL', `${where} chunk ${b.index}: workers ${first}, ${second} and ${third} computed three different results (same backend kind: is the computation deterministic?)`);
          }
        }
      }),
    );
    return wrong;
  }

  #backendOf(workerId: string): string {
    return this.#o.registry.get(workerId)?.capabilities.backend ?? 'unknown';
  }

  /** A live worker of `workerId`'s backend kind, neither it nor one of `not`: the first in join order after it, so checks spread. */
  #peerOf(workerId: string, not: readonly string[]): string | null {
    const backend = this.#backendOf(workerId);
    const live = this.#o.registry.live();
    const at = live.findIndex((w) => w.id === workerId);
    const ring = [...live.slice(at + 1), ...live.slice(0, Math.max(0, at))];
    return ring.find((w) => w.id !== workerId && !not.includes(w.id) && w.capabilities.backend === backend)?.id ?? null;
  }

  #addCosts(started: number, slowestCompute: number, slowestTask: number, waitMs: number): void {
    const wall = performance.now() - started;
    this.#costs.rounds++;
    this.#costs.roundsMs += wall;
    this.#costs.computeMs += slowestCompute;
    this.#costs.taskMs += slowestTask;
    this.#costs.waitMs += waitMs;
    this.#costs.networkMs += Math.max(0, wall - slowestCompute - waitMs);
  }

  /**
   * Every live worker computes the whole round, one share each (robust
   * aggregation then picks among them). A worker that does not deliver just
   * has no share; the step driver refuses too few.
   */
  async #replicatedRound(task: RoundTask, lora: LoraWeights, version: number): Promise<ExecutedRound> {
    const started = performance.now();
    const adapter = await this.#o.versions.ensure(lora, version);
    this.#costs.publishMs += performance.now() - started;
    const waitStart = performance.now();
    const workers = await this.#workersFor(new Set());
    const waitMs = performance.now() - waitStart;
    const full: RoundTask = { ...task, chunks: task.kind === 'text' ? textRoundChunks(task, this.#o.shapes.textFeatures[0]) : task.chunks };
    let slowestCompute = 0;
    let slowestTask = 0;
    const outcomes = await Promise.all(workers.map(async (w) => ({ worker: w.id, outcome: await this.#attempt(w, full, adapter) })));
    if (this.#aborted) throw this.#aborted;
    const shares: Share[] = [];
    for (const { worker, outcome } of outcomes.sort((a, b) => (a.worker < b.worker ? -1 : 1))) {
      if (!outcome.ok) {
        this.#o.warn(`step ${task.step} round ${task.round} (${task.kind}, every worker): worker ${worker} did not deliver (${outcome.reason})`, { detail: outcome.detail });
        continue;
      }
      slowestCompute = Math.max(slowestCompute, outcome.result.timing.compute_ms);
      slowestTask = Math.max(slowestTask, outcome.result.timing.total_ms);
      this.#o.events.accepted(worker, imageSamplesOf(full));
      shares.push({ worker, chunks: [...outcome.result.chunks].sort((a, b) => a.index - b.index), localDelta: outcome.result.localDelta });
    }
    if (!shares.length) throw new AdvclipError('UNAVAILABLE', `step ${task.step} round ${task.round} (${task.kind}): no worker delivered`);
    this.#addCosts(started, slowestCompute, slowestTask, waitMs);
    return { chunks: [], localDeltas: shares.flatMap((s) => (s.localDelta ? [s.localDelta] : [])), shares };
  }

  /** Live workers, those not in `avoid` first; waits while fewer than the minimum are live. */
  async #workersFor(avoid: ReadonlySet<string>): Promise<WorkerSession[]> {
    const min = Math.max(1, this.#o.minWorkers);
    let waited = false;
    for (;;) {
      if (this.#aborted) throw this.#aborted;
      const live = this.#o.registry.live();
      if (live.length >= min) {
        if (waited) this.#o.events.waiting(false, live.length);
        const preferred = live.filter((w) => !avoid.has(w.id));
        return preferred.length ? preferred : live;
      }
      if (!waited) this.#o.events.waiting(true, live.length);
      waited = true;
      await new Promise<void>((resolve) => {
        this.#wakeAbort = resolve;
        void this.#o.registry.nextEvent().then(() => resolve());
      });
      this.#wakeAbort = null;
    }
  }

  #deadlineFor(worker: WorkerSession, samples: number): number {
    const { minMs, factor, unmeasuredMs } = this.#deadline;
    if (worker.samplesPerSecond === null) return unmeasuredMs;
    return Math.round(Math.max(minMs, (factor * 1000 * samples) / worker.samplesPerSecond));
  }

  #attempt(worker: WorkerSession, task: RoundTask, adapter: AdapterBlob): Promise<Outcome> {
    const taskId = `${this.#o.runId ? `${this.#o.runId}/` : ''}${task.step}.${task.round}.${++this.#seq}`;
    const samples = imageSamplesOf(task);
    const deadlineMs = this.#deadlineFor(worker, samples);
    const sentAt = performance.now();
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => settle({ ok: false, reason: 'deadline', detail: `no answer within ${deadlineMs} ms` }), deadlineMs);
      const settle = (outcome: Outcome) => {
        if (!this.#pending.has(taskId)) return;
        clearTimeout(timer);
        this.#pending.delete(taskId);
        if (outcome.ok && samples > 0) this.#o.registry.recordRate(worker.id, samples, (performance.now() - sentAt) / 1000);
        resolve(outcome);
      };
      this.#pending.set(taskId, { workerId: worker.id, task, settle });
      try {
        const envelope = { taskId, adapterVersion: adapter.version, adapterSha256: adapter.sha256, seed: this.#o.seed, deadlineMs };
        const t0 = performance.now();
        const message = { ...encodeTask(task, envelope, this.#o.shapes), ...(this.#o.runId ? { run_id: this.#o.runId } : {}) };
        this.#costs.encodeMs += performance.now() - t0;
        worker.send({ task: message });
      } catch (err) {
        settle({ ok: false, reason: 'send_failed', detail: (err as Error).message });
      }
    });
  }
}
