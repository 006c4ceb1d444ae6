/**
 * The workers a coordinator knows: admitted by Register, live from their
 * Hello on the Work stream until the stream ends, they fail heartbeats, or
 * the coordinator drops them. Listeners hear every join and loss (the
 * executor reassigns a lost worker's chunks; metrics and events count them).
 * A worker that sends `maxBadResults` bad results is told to drain and
 * dropped (excluded): its chunks go to the others.
 */
import { randomBytes } from 'node:crypto';
import type { CoordinatorMessage } from '../protocol/generated/advclip/v1/CoordinatorMessage.ts';
import type { WorkerCapabilities__Output } from '../protocol/generated/advclip/v1/WorkerCapabilities.ts';
import { failedPrecondition } from '../core/errors.ts';

export interface WorkerSession {
  readonly id: string;
  readonly name: string;
  /** what it was admitted as (its certificate's SAN URI or CN under mTLS) */
  readonly identity: string;
  readonly capabilities: WorkerCapabilities__Output;
  /** measured samples/s (EMA), null until its first result */
  samplesPerSecond: number | null;
  /** newest adapter version the worker says it holds */
  heldVersion: number;
  lastSeenMs: number;
  send(message: CoordinatorMessage): void;
}

export type RegistryEvent =
  | { readonly kind: 'joined'; readonly session: WorkerSession }
  | { readonly kind: 'lost'; readonly session: WorkerSession; readonly reason: string; readonly excluded?: boolean };

/** Bad results a worker may send before it is excluded. */
export const DEFAULT_MAX_BAD_RESULTS = 3;

interface Admitted {
  readonly name: string;
  /** what quarantine binds to, across registrations */
  readonly identity: string;
  readonly capabilities: WorkerCapabilities__Output;
}

/** Weight of the newest measurement in the throughput EMA. */
const RATE_EMA = 0.5;

export class WorkerRegistry {
  readonly #maxBadResults: number;
  readonly #badResults = new Map<string, string[]>();
  readonly #admitted = new Map<string, Admitted>();
  readonly #live = new Map<string, WorkerSession & { end(): void }>();
  readonly #listeners = new Set<(event: RegistryEvent) => void>();
  #seq = 0;
  #joinedEver = 0;
  readonly #backendsJoined = new Set<string>();
  /** identity → why it was quarantined */
  readonly #quarantined = new Map<string, string>();
  readonly #order: ((live: WorkerSession[]) => WorkerSession[]) | undefined;

  /**
   * `order`: how live() lists the workers (default: join order). A sweep's
   * pool lists idle ones first, so that each run's round, which gives its
   * few chunks to the first workers listed, lands where nothing waits.
   */
  constructor(options: { readonly maxBadResults?: number; readonly order?: (live: WorkerSession[]) => WorkerSession[] } = {}) {
    this.#maxBadResults = options.maxBadResults ?? DEFAULT_MAX_BAD_RESULTS;
    this.#order = options.order;
  }

  /**
   * A new worker id for admitted capabilities; the random part keeps a Work
   * stream from claiming an id it was not given. `identity`: what the worker
   * is known by across registrations (default: its name); a quarantined one
   * is refused.
   */
  admit(capabilities: WorkerCapabilities__Output, identity = capabilities.worker_name || 'worker'): string {
    const name = capabilities.worker_name || 'worker';
    const why = this.#quarantined.get(identity);
    if (why !== undefined) throw failedPrecondition(`worker identity "${identity}" is quarantined (${why}): not admitted`);
    const id = `w${++this.#seq}-${name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 48)}-${randomBytes(4).toString('hex')}`;
    this.#admitted.set(id, { name, identity, capabilities });
    return id;
  }

  /** Quarantines the worker's identity (it is not admitted again) and drops it, told to drain. */
  quarantine(id: string, why: string): void {
    const identity = this.#admitted.get(id)?.identity;
    if (identity === undefined) return;
    this.#quarantined.set(identity, why);
    try {
      this.#live.get(id)?.send({ drain: { reason: `quarantined: ${why}` } });
    } catch {
      // a stream closing under us: it is dropped below all the same
    }
    this.lose(id, `quarantined: ${why}`, true);
  }

  /** Identities quarantined so far, with why. */
  get quarantined(): ReadonlyMap<string, string> {
    return this.#quarantined;
  }

  /** The worker opened its Work stream: it is live and gets work from the next round. */
  join(id: string, heldVersion: number, send: (m: CoordinatorMessage) => void, end: () => void): WorkerSession {
    const admitted = this.#admitted.get(id);
    if (!admitted) throw failedPrecondition(`worker "${id}" was not admitted: call Register first`);
    if (this.#live.has(id)) throw failedPrecondition(`worker "${id}" already has a Work stream`);
    const session = { id, name: admitted.name, identity: admitted.identity, capabilities: admitted.capabilities, samplesPerSecond: null, heldVersion, lastSeenMs: Date.now(), send, end };
    this.#live.set(id, session);
    this.#joinedEver++;
    this.#backendsJoined.add(admitted.capabilities.backend || 'unknown');
    this.#emit({ kind: 'joined', session });
    return session;
  }

  /** Drops a live worker (stream ended, heartbeat missed, …); its stream is ended. */
  lose(id: string, reason: string, excluded = false): void {
    const session = this.#live.get(id);
    if (!session) return;
    this.#live.delete(id);
    this.#admitted.delete(id);
    this.#badResults.delete(id);
    try {
      session.end();
    } catch {
      // already closed
    }
    this.#emit({ kind: 'lost', session, reason, excluded });
  }

  /**
   * Counts a bad result of a live worker; at `maxBadResults` the worker is
   * told to drain and dropped as excluded. The worker's count so far.
   */
  flagBadResult(id: string, reason: string): number {
    if (!this.#live.has(id)) return 0;
    const reasons = [...(this.#badResults.get(id) ?? []), reason];
    this.#badResults.set(id, reasons);
    if (reasons.length >= this.#maxBadResults) {
      const why = `excluded after ${reasons.length} bad results (${reasons.join(', ')})`;
      try {
        this.#live.get(id)!.send({ drain: { reason: why } });
      } catch {
        // a stream closing under us: it is dropped below all the same
      }
      this.lose(id, why, true);
    }
    return reasons.length;
  }

  /** Bad results of a live worker so far. */
  badResults(id: string): number {
    return this.#badResults.get(id)?.length ?? 0;
  }

  touch(id: string, heldVersion?: number): void {
    const session = this.#live.get(id);
    if (!session) return;
    session.lastSeenMs = Date.now();
    if (heldVersion !== undefined) session.heldVersion = Math.max(session.heldVersion, heldVersion);
  }

  recordRate(id: string, samples: number, seconds: number): void {
    const session = this.#live.get(id);
    if (!session || samples <= 0 || !(seconds > 0)) return;
    const rate = samples / seconds;
    session.samplesPerSecond = session.samplesPerSecond === null ? rate : RATE_EMA * rate + (1 - RATE_EMA) * session.samplesPerSecond;
  }

  get(id: string): WorkerSession | undefined {
    return this.#live.get(id);
  }

  /** Live workers in join order (or the order given to the constructor). */
  live(): WorkerSession[] {
    const live = [...this.#live.values()];
    return this.#order ? this.#order(live) : live;
  }

  /** Workers that ever opened a Work stream. */
  /** The compute backends of every worker that joined, sorted (what a run's gradients were computed on). */
  get backendsJoined(): string[] {
    return [...this.#backendsJoined].sort();
  }

  get joinedEver(): number {
    return this.#joinedEver;
  }

  broadcast(message: CoordinatorMessage): void {
    for (const s of this.#live.values()) {
      try {
        s.send(message);
      } catch {
        // a stream closing under us: the loss is reported by its own handler
      }
    }
  }

  /** Tells every live worker to drain and waits until their streams have ended, at most `graceMs`. */
  async drainAll(reason: string, graceMs: number): Promise<void> {
    this.broadcast({ drain: { reason } });
    const until = Date.now() + graceMs;
    while (this.live().length > 0 && Date.now() < until) {
      await Promise.race([this.nextEvent(), new Promise((r) => setTimeout(r, 200))]);
    }
  }

  /** Drops workers not heard from in `timeoutMs`, except `exempt` ones (computing: their task deadline governs). */
  sweep(timeoutMs: number, exempt: (id: string) => boolean, now = Date.now()): void {
    for (const s of [...this.#live.values()]) {
      if (now - s.lastSeenMs > timeoutMs && !exempt(s.id)) this.lose(s.id, `no heartbeat for ${Math.round((now - s.lastSeenMs) / 1000)} s`);
    }
  }

  onEvent(listener: (event: RegistryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves at the next join or loss. */
  nextEvent(): Promise<RegistryEvent> {
    return new Promise((resolve) => {
      const off = this.onEvent((e) => {
        off();
        resolve(e);
      });
    });
  }

  #emit(event: RegistryEvent): void {
    for (const l of [...this.#listeners]) l(event);
  }
}
