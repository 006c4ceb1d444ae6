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
 *
 * Exact mode's results are deterministic, which buys two things. A part out
 * well past its expected time while a worker of its backend is idle is sent
 * to that one too, and the first good result is taken (stragglers; when both
 * come, comparing them is a free check). And --verify-fraction's second
 * copies run alongside the round (planned with it, assign.ts): a worker
 * caught wrong has its results of the round recomputed, and when it had
 * contributed unchecked results to earlier rounds, the step is redone
 * (RedoStep) or the run goes back to the earliest step it touched (RollBack).
 */
import { AdvclipError } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import { imageSamplesOf, textRoundChunks, type Chunk, type ChunkResult, type RoundTask } from '../core/shard.ts';
import { Purpose, RandomStream } from '../core/rng.ts';
import { RedoStep, StepAbandoned, RollBack, type ExecutedRound, type Executor, type Share } from '../core/trainer.ts';
import type { TaskError__Output } from '../protocol/generated/advclip/v1/TaskError.ts';
import type { TaskResult__Output } from '../protocol/generated/advclip/v1/TaskResult.ts';
import { decodeResult, encodeTask, InvalidResult, type RejectReason, type RoundShapes } from '../protocol/task-codec.ts';
import type { AdapterBlob } from '../protocol/adapter-blob.ts';
import type { WireMessage } from '../protocol/wire-meter.ts';
import type { AdapterVersions } from './adapter-versions.ts';
import { assignChunks, assignCopies, type Assignment } from './assign.ts';
import type { WorkerRegistry, WorkerSession } from './worker-registry.ts';

export interface DeadlineOptions {
  /** the shortest deadline of a task */
  readonly minMs: number;
  /** deadline = max(minMs, factor × samples / measured samples/s) */
  readonly factor: number;
  /** for a worker not measured yet (its first task includes warm-up) */
  readonly unmeasuredMs: number;
  /**
   * a task still out after duplicateFactor × its expected time (by the
   * worker's measured rate, or the pace of the round's finished parts,
   * whichever is sooner; at least DUPLICATE_MIN_MS) goes to an idle worker of
   * its backend too, and the first good result counts (0: no duplicates)
   */
  readonly duplicateFactor: number;
}

export const DEFAULT_DEADLINE: DeadlineOptions = Object.freeze({ minMs: 30_000, factor: 20, unmeasuredMs: 300_000, duplicateFactor: 2 });

/** The shortest wait before a task is duplicated: below it, timer and transfer noise. */
const DUPLICATE_MIN_MS = 50;

/**
 * Steps of states the step loop keeps so that a caught worker's unchecked
 * results can be taken back: long enough that a worker wrong in a chunk of
 * every round escapes checks at `fraction` for that long with probability
 * ≤ 1e-3 (0 without verification).
 */
export function rollbackWindowFor(fraction: number, roundsPerStep: number): number {
  if (fraction <= 0) return 0;
  if (fraction >= 1) return 2;
  return Math.max(2, Math.ceil(Math.log(1000) / (-Math.log1p(-fraction) * Math.max(1, roundsPerStep))));
}

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
  /** `chunks` still out on a slow worker were sent to an idle one too */
  duplicated(slowId: string, idleId: string, chunks: number): void;
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
  /** steps of states the step loop keeps (runSteps' rollbackWindow): a caught worker's unchecked results up to that far back are taken back with RollBack (0: within its step only) */
  readonly rollbackWindow?: number;
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

/** How long the round's finished parts took per chunk (the slowest), for speculation. */
interface RoundPace {
  msPerChunk: number | null;
}

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
  /** step → the workers whose unchecked results its finished rounds used (the last rollbackWindow steps) */
  readonly #unchecked = new Map<number, Set<string>>();
  /** workers caught in an evaluation round, whose unchecked training results the next training round takes back */
  readonly #caughtOutsideTraining = new Set<string>();
  /** worker → when its last task settled (a task sent before that waited in its queue) */
  readonly #settledAt = new Map<string, number>();
  /** woken whenever a task settles (a worker may have become idle) */
  readonly #onSettle = new Set<() => void>();
  #wakeAbort: (() => void) | null = null;
  /** the run is stopping: a round that has to wait for workers gives its step up instead */
  #draining = false;

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

  /** Steps a caught worker's unchecked results are taken back (RollBack) from: the step loop keeps their states. */
  get rollbackWindow(): number {
    return this.#o.rollbackWindow ?? 0;
  }

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

  /** The run is stopping (SIGTERM): a round waiting for workers, now or later, gives its step up (StepAbandoned) rather than wait for ever. */
  drain(): void {
    this.#draining = true;
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
    const pace: RoundPace = { msPerChunk: null };
    let slowestCompute = 0;
    let slowestTask = 0;
    let waitMs = 0;
    const maxAttempts = this.#o.maxAttempts ?? 8;

    const place = async (part: readonly Chunk[], avoid: ReadonlySet<string>): Promise<Assignment[]> => {
      const waitStart = performance.now();
      const workers = await this.#workersFor(avoid);
      waitMs += performance.now() - waitStart;
      // a worker still computing a part that was taken elsewhere (a slow duplicate) would queue this one behind it
      const free = workers.filter((w) => !this.busy(w.id));
      return assignChunks(part, (free.length ? free : workers).map((w) => ({ id: w.id, samplesPerSecond: w.samplesPerSecond })));
    };
    const runPlan = async (plan: readonly Assignment[], avoid: ReadonlySet<string>, attempt: number): Promise<void> => {
      await Promise.all(
        plan.map(async ({ workerId, chunks: mine }) => {
          const worker = this.#o.registry.get(workerId);
          const sub: RoundTask = { ...task, chunks: mine };
          const sentAt = performance.now();
          const { outcome, by } = worker ? await this.#attemptSpeculatively(worker, sub, adapter, pace) : { outcome: { ok: false, reason: 'worker_lost', detail: 'left before its task was sent' } as Outcome, by: workerId };
          if (outcome.ok) {
            const r = outcome.result;
            for (const c of r.chunks) {
              chunks.set(c.index, c);
              owner.set(c.index, by);
            }
            shares.push({ worker: by, chunks: r.chunks, localDelta: r.localDelta, first: Math.min(...mine.map((c) => c.index)) });
            slowestCompute = Math.max(slowestCompute, r.timing.compute_ms);
            slowestTask = Math.max(slowestTask, r.timing.total_ms);
            if (mine.length) pace.msPerChunk = Math.max(pace.msPerChunk ?? 0, (performance.now() - sentAt) / mine.length);
            this.#o.events.accepted(by, imageSamplesOf(sub));
            return;
          }
          if (this.#aborted) throw this.#aborted;
          const where = `step ${task.step} round ${task.round} (${task.kind}) ${mine.length ? `chunks ${mine.map((c) => c.index).join(',')}` : ''}`;
          if (attempt + 1 >= maxAttempts) {
            throw new AdvclipError('UNAVAILABLE', `${where}: failed ${maxAttempts} times, last on worker ${workerId} (${outcome.reason}: ${outcome.detail})`);
          }
          this.#o.warn(`${where}: worker ${workerId} did not deliver (${outcome.reason}); reassigning`, { detail: outcome.detail });
          const elsewhere = new Set([...avoid, workerId]);
          await runPlan(await place(mine, elsewhere), elsewhere, attempt + 1);
        }),
      );
    };

    // a text round's chunks are class groups: spread over the workers like image chunks
    const all = task.kind === 'text' ? textRoundChunks(task, this.#o.shapes.textFeatures[0]) : task.chunks;
    this.#forgetBefore(task.step - Math.max(1, this.#o.rollbackWindow ?? 0));
    const training = task.kind !== 'eval';
    if (training && this.#caughtOutsideTraining.size) {
      const caught = new Set(this.#caughtOutsideTraining);
      this.#caughtOutsideTraining.clear();
      this.#takeBack(task.step, caught);
    }
    const fraction = task.kind === 'local-delta' ? 0 : (this.#o.verifyFraction ?? 0);
    const picked = all.filter((c) => verifiedChunk(this.#o.seed, task, c.index, fraction));
    const plan = await place(all, new Set());
    // the second copies go out with the round, to other workers of the first copies' backends
    const copies = new Map<number, { worker: string; result: ChunkResult }>();
    const live = this.#o.registry.live().filter((w) => !this.busy(w.id) || plan.some((a) => a.workerId === w.id));
    const copyPlan = picked.length ? assignCopies(picked, plan, live.map((w) => ({ id: w.id, samplesPerSecond: w.samplesPerSecond, backend: w.capabilities.backend }))) : [];
    await Promise.all([
      runPlan(plan, new Set(), 0),
      ...copyPlan.map(async ({ workerId, chunks: part }) => {
        for (const result of (await this.#computeOn(workerId, task, part, adapter, 'a verification')) ?? []) copies.set(result.index, { worker: workerId, result });
      }),
    ]);
    const { wrong, checked } = picked.length ? await this.#verify(task, adapter, picked, chunks, owner, copies) : { wrong: new Set<string>(), checked: new Set<number>() };
    if (wrong.size) {
      // the round's other results of a wrong worker are computed again, by the others
      const redo = all.filter((c) => wrong.has(owner.get(c.index)!));
      for (const c of redo) checked.delete(c.index);
      if (redo.length) await runPlan(await place(redo, wrong), wrong, 0);
      // an evaluation changes no state: its step loop cannot go back from here, the next training round does
      if (training) this.#takeBack(task.step, wrong);
      else for (const w of wrong) this.#caughtOutsideTraining.add(w);
    }
    if (training) for (const [index, worker] of owner) if (!checked.has(index)) this.#uncheckedAt(task.step).add(worker);
    const ordered = [...chunks.values()].sort((a, b) => a.index - b.index);
    if (ordered.length !== all.length) throw new AdvclipError('INTERNAL', `round ${task.round}: ${ordered.length} of ${all.length} chunks collected`);
    this.#addCosts(started, slowestCompute, slowestTask, waitMs);
    const inOrder: Share[] = shares.sort((a, b) => a.first - b.first).map(({ worker, chunks: c, localDelta }) => ({ worker, chunks: c, localDelta }));
    return { chunks: ordered, localDeltas: inOrder.flatMap((s) => (s.localDelta ? [s.localDelta] : [])), shares: inOrder };
  }

  #uncheckedAt(step: number): Set<string> {
    let workers = this.#unchecked.get(step);
    if (!workers) this.#unchecked.set(step, (workers = new Set()));
    return workers;
  }

  #forgetBefore(step: number): void {
    for (const s of this.#unchecked.keys()) if (s < step) this.#unchecked.delete(s);
  }

  /**
   * Caught workers' unchecked results in rounds before this one: the
   * earliest step they are in is taken again (RedoStep when it is this one,
   * RollBack for an earlier one, when the step loop keeps states).
   */
  #takeBack(step: number, wrong: ReadonlySet<string>): void {
    const touched = [...this.#unchecked].filter(([, workers]) => [...wrong].some((w) => workers.has(w))).map(([s]) => s);
    if (!touched.length) return;
    const earliest = Math.min(...touched);
    const who = `worker ${[...wrong].join(', ')} sent wrong results`;
    if (earliest < step && (this.#o.rollbackWindow ?? 0) > 0) {
      this.#forgetFrom(earliest);
      throw new RollBack(earliest, `${who}, and step ${earliest} used its unchecked results`);
    }
    if (touched.includes(step)) {
      this.#forgetFrom(step);
      throw new RedoStep(`${who}, and an earlier round of step ${step} used its unchecked results`);
    }
  }

  #forgetFrom(step: number): void {
    for (const s of this.#unchecked.keys()) if (s >= step) this.#unchecked.delete(s);
  }

  /** `part` of `task` computed on `workerId` (what for: the warning when it is not); null when it is not. */
  async #computeOn(workerId: string, task: RoundTask, part: readonly Chunk[], adapter: AdapterBlob, what: string): Promise<readonly ChunkResult[] | null> {
    const w = this.#o.registry.get(workerId);
    if (!w) return null;
    // not measured: a copy of a chunk or two is mostly a task's fixed cost, and would make the worker look slow to the next round's plan
    const outcome = await this.#attempt(w, { ...task, chunks: part }, adapter, false);
    if (outcome.ok) return outcome.result.chunks;
    this.#o.warn(`step ${task.step} round ${task.round} (${task.kind}): worker ${workerId} did not deliver ${what} (${outcome.reason})`, { detail: outcome.detail });
    return null;
  }

  /**
   * Compares each `picked` chunk's result with a second copy of another
   * worker of the same backend kind: the one in `copies` when it came from
   * another worker than the result's, else one computed now. On a mismatch a
   * third worker computes the chunk and the one it contradicts is
   * quarantined. `chunks` ends with the agreed results. The wrong workers,
   * and the chunks whose results were checked.
   */
  async #verify(
    task: RoundTask,
    adapter: AdapterBlob,
    picked: readonly Chunk[],
    chunks: Map<number, ChunkResult>,
    owner: ReadonlyMap<number, string>,
    copies: ReadonlyMap<number, { worker: string; result: ChunkResult }>,
  ): Promise<{ wrong: Set<string>; checked: Set<number> }> {
    const wrong = new Set<string>();
    const checked = new Set<number>();
    const where = `step ${task.step} round ${task.round} (${task.kind})`;
    const pairs: { first: string; second: string; b: ChunkResult }[] = [];
    const byOwner = new Map<string, Chunk[]>();
    for (const c of picked) {
      const first = owner.get(c.index)!;
      const copy = copies.get(c.index);
      if (copy && copy.worker !== first) pairs.push({ first, second: copy.worker, b: copy.result });
      else byOwner.set(first, [...(byOwner.get(first) ?? []), c]);
    }
    await Promise.all(
      [...byOwner].map(async ([first, part]) => {
        const second = this.#peerOf(first, []);
        if (!second) {
          this.#o.warn(`${where}: no second worker of backend ${this.#backendOf(first)} to verify chunks ${part.map((c) => c.index).join(',')}`);
          return;
        }
        for (const b of (await this.#computeOn(second, task, part, adapter, 'a verification')) ?? []) pairs.push({ first, second, b });
      }),
    );
    if (pairs.length) this.#o.events.verified(pairs.length);
    const catchWorker = (workerId: string, detail: string) => {
      if (wrong.has(workerId)) return;
      wrong.add(workerId);
      this.#o.events.caught(workerId, detail);
      this.#o.registry.quarantine(workerId, `${where}: ${detail}`);
    };
    await Promise.all(
      pairs.map(async ({ first, second, b }) => {
        const a = chunks.get(b.index)!;
        checked.add(b.index);
        if (sameBits(a, b)) return;
        const third = this.#peerOf(first, [second]);
        const decided = third ? (await this.#computeOn(third, task, [picked.find((c) => c.index === b.index)!], adapter, 'a deciding computation'))?.[0] : undefined;
        if (!third || !decided) throw new AdvclipError('UNAVAILABLE', `${where} chunk ${b.index}: workers ${first} and ${second} computed different bits and no third worker of their backend could decide`);
        if (sameBits(decided, b)) {
          chunks.set(b.index, b);
          catchWorker(first, `chunk ${b.index} differs from ${second}'s and ${third}'s`);
        } else if (sameBits(decided, a)) {
          catchWorker(second, `chunk ${b.index} differs from ${first}'s and ${third}'s`);
        } else {
          throw new AdvclipError('INTERNAL', `${where} chunk ${b.index}: workers ${first}, ${second} and ${third} computed three different results (same backend kind: is the computation deterministic?)`);
        }
      }),
    );
    return { wrong, checked };
  }

  /**
   * `sub` on `worker`; when it is still out past its due time (duplicateFactor)
   * while a worker of its backend is idle, on that one too. The first good
   * result, and who computed it; when both come, the later one is compared
   * with it (a free check).
   */
  async #attemptSpeculatively(worker: WorkerSession, sub: RoundTask, adapter: AdapterBlob, pace: RoundPace): Promise<{ outcome: Outcome; by: string }> {
    const original = this.#attempt(worker, sub, adapter).then((outcome) => ({ outcome, by: worker.id }));
    if (!(this.#deadline.duplicateFactor > 0)) return original;
    const idle = await Promise.race([original.then(() => null), this.#idlePeerWhenDue(worker, sub, pace, original)]);
    if (!idle) return original;
    this.#o.events.duplicated(worker.id, idle.id, sub.chunks.length);
    const duplicate = this.#attempt(idle, sub, adapter).then((outcome) => ({ outcome, by: idle.id }));
    const first = await Promise.race([original, duplicate]);
    const other = first.by === worker.id ? duplicate : original;
    if (!first.outcome.ok) {
      const second = await other;
      return second.outcome.ok ? second : await original;
    }
    const winner = first.outcome.result;
    void other.then(({ outcome, by }) => {
      if (!outcome.ok) {
        if (!this.#aborted) this.#o.warn(`step ${sub.step} round ${sub.round} (${sub.kind}): worker ${by} did not deliver (${outcome.reason}); its duplicate on worker ${first.by} did`, { detail: outcome.detail });
        return;
      }
      this.#o.events.verified(outcome.result.chunks.length);
      for (const c of outcome.result.chunks) {
        const w = winner.chunks.find((x) => x.index === c.index);
        if (w && !sameBits(w, c)) this.#o.warn(`step ${sub.step} round ${sub.round} (${sub.kind}) chunk ${c.index}: the duplicates of workers ${first.by} and ${by} differ`);
      }
    });
    return first;
  }

  /** Resolves with an idle worker of `worker`'s backend once `sub` is due a duplicate; null once `done` settles first. */
  async #idlePeerWhenDue(worker: WorkerSession, sub: RoundTask, pace: RoundPace, done: Promise<unknown>): Promise<WorkerSession | null> {
    const factor = this.#deadline.duplicateFactor;
    const sentAt = performance.now();
    let finished = false;
    void done.then(() => (finished = true));
    for (;;) {
      if (finished || this.#aborted) return null;
      const expected = this.#expectedMs(worker, sub, pace);
      const dueAt = expected === null ? Infinity : sentAt + Math.max(DUPLICATE_MIN_MS, factor * expected);
      const now = performance.now();
      if (now >= dueAt) {
        const idle = this.#idlePeer(worker);
        if (idle) return idle;
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#onSettle.delete(wake);
          resolve();
        };
        const timer = dueAt > now && dueAt < Infinity ? setTimeout(wake, dueAt - now) : undefined;
        this.#onSettle.add(wake);
        void done.then(wake);
      });
    }
  }

  /** What `sub` should take on `worker`: by its measured rate, or by the round's pace so far, whichever is shorter; null when neither is known. */
  #expectedMs(worker: WorkerSession, sub: RoundTask, pace: RoundPace): number | null {
    const samples = imageSamplesOf(sub);
    const byRate = samples > 0 && worker.samplesPerSecond ? (1000 * samples) / worker.samplesPerSecond : null;
    const byPace = pace.msPerChunk === null ? null : pace.msPerChunk * sub.chunks.length;
    return byRate === null ? byPace : byPace === null ? byRate : Math.min(byRate, byPace);
  }

  /** The fastest live worker of `worker`'s backend with no task out, not `worker`. */
  #idlePeer(worker: WorkerSession): WorkerSession | null {
    const backend = worker.capabilities.backend;
    const idle = this.#o.registry.live().filter((w) => w.id !== worker.id && w.capabilities.backend === backend && !this.busy(w.id));
    return idle.sort((a, b) => (b.samplesPerSecond ?? 0) - (a.samplesPerSecond ?? 0))[0] ?? null;
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
      if (this.#draining) throw new StepAbandoned(`stopping with ${live.length} live workers of the ${min} a round needs`);
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

  /** `task` on `worker`; `measured`: its time counts in the worker's rate */
  #attempt(worker: WorkerSession, task: RoundTask, adapter: AdapterBlob, measured = true): Promise<Outcome> {
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
        const now = performance.now();
        // a task sent while the worker had another one started when that one ended
        const began = Math.max(sentAt, this.#settledAt.get(worker.id) ?? 0);
        this.#settledAt.set(worker.id, now);
        if (outcome.ok && measured && samples > 0) this.#o.registry.recordRate(worker.id, samples, (now - began) / 1000);
        resolve(outcome);
        // after the round has taken the outcome in (its pace)
        setImmediate(() => {
          for (const wake of [...this.#onSettle]) wake();
        });
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
