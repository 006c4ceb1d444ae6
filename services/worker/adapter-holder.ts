/**
 * The adapter versions a worker holds. Version 0 is derived from the seed
 * (initLora), later ones come from NATS (prefetched as soon as
 * `adapter.latest` moves) or from the coordinator's GetAdapter. A version
 * is held only when its SHA-256 equals what the task says; a task at a
 * version that cannot be verified is refused (FAILED_PRECONDITION). One
 * version lives as tensors at a time; the previous one is disposed. A
 * version the coordinator says is not on NATS (its publish failed) comes
 * over gRPC at once, without waiting for NATS.
 */
import { AdvclipError, failedPrecondition } from '../core/errors.ts';
import type { LoraWeights } from '../core/lora.ts';
import { AdapterTensors } from '../core/shard.ts';
import { decodeAdapterBlob, encodeAdapterBlob, type AdapterBlob } from '../protocol/adapter-blob.ts';
import { sha256Hex, type AdapterSubscriber, type HeldAdapter } from '../protocol/adapter-store.ts';
import { unlessDropped, type NatsLinkState } from '../protocol/nats-connection.ts';

export interface AdapterHolderOptions {
  /** version 0, from the run's seed */
  readonly initial: LoraWeights;
  /** NATS, when connected */
  readonly subscriber: AdapterSubscriber | null;
  /** the NATS connection's state: while it is down versions come over gRPC at once */
  readonly natsLink?: NatsLinkState;
  /** the coordinator's GetAdapter */
  readonly getAdapter: (version: number) => Promise<AdapterBlob>;
  /** how long a NATS fetch may take before trying gRPC */
  readonly natsFetchTimeoutMs?: number;
  /** a version became held (verified) */
  readonly onHeld?: (version: number, via: 'nats' | 'grpc' | 'seed') => void;
  readonly warn: (message: string) => void;
}

/** Verified versions kept as host weights (besides the one on the device). */
const KEEP = 3;

export class AdapterHolder {
  readonly #o: AdapterHolderOptions;
  readonly #verified = new Map<number, { sha256: string; weights: LoraWeights }>();
  #current: { version: number; sha256: string; tensors: AdapterTensors } | null = null;
  #offNats: (() => void) | null = null;
  #newest = 0;
  /** versions announced as not on NATS */
  readonly #grpcOnly = new Set<number>();
  /** fetches in progress, so a prefetch and a task share one download */
  readonly #fetching = new Map<string, Promise<LoraWeights>>();

  constructor(options: AdapterHolderOptions) {
    this.#o = options;
    const seed = encodeAdapterBlob(options.initial, 0);
    this.#keep(0, seed.sha256, options.initial, 'seed');
    this.#offNats = options.subscriber?.onVersion((held) => this.#acceptNats(held)) ?? null;
    const latest = options.subscriber?.latest();
    if (latest) this.#acceptNats(latest);
  }

  /** Newest verified version. */
  get newest(): number {
    return this.#newest;
  }

  /** A version announced on the Work stream: fetched now over gRPC unless NATS delivers it. */
  prefetch(version: number, sha256: string, onNats: boolean): void {
    if (!onNats) this.#grpcOnly.add(version);
    if ((this.#o.subscriber && onNats) || this.#verified.get(version)?.sha256 === sha256) return;
    this.#weightsAt(version, sha256).catch((err) => this.#o.warn(`prefetch of adapter version ${version} failed: ${(err as Error).message}`));
  }

  /** The adapters of `version` as tensors, verified against `sha256`. */
  async tensorsAt(version: number, sha256: string): Promise<AdapterTensors> {
    if (this.#current?.version === version && this.#current.sha256 === sha256) return this.#current.tensors;
    const weights = await this.#weightsAt(version, sha256);
    if (this.#current?.version === version && this.#current.sha256 === sha256) return this.#current.tensors;
    this.#current?.tensors.dispose();
    this.#current = { version, sha256, tensors: new AdapterTensors(weights) };
    return this.#current.tensors;
  }

  dispose(): void {
    this.#offNats?.();
    this.#current?.tensors.dispose();
    this.#current = null;
  }

  #weightsAt(version: number, sha256: string): Promise<LoraWeights> {
    const have = this.#verified.get(version);
    if (have?.sha256 === sha256) return Promise.resolve(have.weights);
    const key = `${version}:${sha256}`;
    let fetching = this.#fetching.get(key);
    if (!fetching) {
      fetching = this.#fetch(version, sha256).finally(() => this.#fetching.delete(key));
      this.#fetching.set(key, fetching);
    }
    return fetching;
  }

  async #fetch(version: number, sha256: string): Promise<LoraWeights> {
    const reasons: string[] = [];
    const link = this.#o.natsLink;
    const subscriber = this.#grpcOnly.has(version) || link?.up() === false ? null : this.#o.subscriber;
    if (subscriber) {
      try {
        return await unlessDropped(this.#viaNats(subscriber, version, sha256), link, `adapter version ${version}`);
      } catch (err) {
        reasons.push(`NATS: ${(err as Error).message}`);
      }
    }
    try {
      const blob = await this.#o.getAdapter(version);
      if (blob.version !== version) throw new AdvclipError('DATA_LOSS', `GetAdapter(${version}) answered version ${blob.version}`);
      const actual = sha256Hex(blob.bytes);
      if (actual !== sha256) throw new AdvclipError('DATA_LOSS', `GetAdapter(${version}) blob has SHA-256 ${actual}, expected ${sha256}`);
      return this.#accept(version, sha256, blob.bytes, 'grpc');
    } catch (err) {
      reasons.push(`gRPC: ${(err as Error).message}`);
    }
    throw failedPrecondition(`cannot hold a verified adapter version ${version} (sha256 ${sha256.slice(0, 12)}…): ${reasons.join('; ')}`);
  }

  async #viaNats(subscriber: AdapterSubscriber, version: number, sha256: string): Promise<LoraWeights> {
    // the coordinator published it before sending the task: usually the watch is about to deliver it
    const soon = await subscriber.waitForVersion(version, this.#o.natsFetchTimeoutMs ?? 5_000).catch(() => null);
    if (soon?.version === version && soon.sha256 === sha256) return this.#accept(version, sha256, soon.bytes, 'nats');
    const held = await withTimeout(subscriber.fetch(version, sha256), this.#o.natsFetchTimeoutMs ?? 5_000, `NATS fetch of version ${version}`);
    return this.#accept(held.version, held.sha256, held.bytes, 'nats');
  }

  #acceptNats(held: HeldAdapter): void {
    try {
      this.#accept(held.version, held.sha256, held.bytes, 'nats');
    } catch (err) {
      this.#o.warn(`adapter version ${held.version} from NATS does not fit this run: ${(err as Error).message}`);
    }
  }

  /** Bytes whose hash was checked by the caller → held weights. */
  #accept(version: number, sha256: string, bytes: Uint8Array, via: 'nats' | 'grpc'): LoraWeights {
    const have = this.#verified.get(version);
    if (have?.sha256 === sha256) return have.weights;
    const weights = decodeAdapterBlob(bytes, this.#o.initial, `adapter version ${version}`);
    this.#keep(version, sha256, weights, via);
    return weights;
  }

  #keep(version: number, sha256: string, weights: LoraWeights, via: 'nats' | 'grpc' | 'seed'): void {
    this.#verified.set(version, { sha256, weights });
    for (const v of [...this.#verified.keys()].sort((a, b) => a - b).slice(0, Math.max(0, this.#verified.size - KEEP))) this.#verified.delete(v);
    for (const v of this.#grpcOnly) if (v < version) this.#grpcOnly.delete(v);
    if (version >= this.#newest) {
      this.#newest = version;
      this.#o.onHeld?.(version, via);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AdvclipError('DEADLINE_EXCEEDED', `${what} took over ${ms} ms`)), ms);
    }),
  ]);
}
