/**
 * The adapter versions a coordinator serves: each new version is encoded
 * once, kept (the newest few) for GetAdapter, published to NATS when a
 * publisher is there, and announced on every Work stream. Version 0 (the
 * initial adapters) is only kept: every worker derives it from the seed.
 * While NATS is down a version is not published (a publish would wait for
 * its timeout, every version): it is announced as not on NATS and workers
 * fetch it with GetAdapter; the next version published after NATS is back
 * moves `adapter.latest`, and workers catch up from there.
 */
import type { LoraWeights } from '../core/lora.ts';
import type { AdapterBlob } from '../protocol/adapter-blob.ts';
import { encodeAdapterBlob } from '../protocol/adapter-blob.ts';
import type { AdapterPublisher } from '../protocol/adapter-store.ts';
import { AdvclipError } from '../core/errors.ts';
import { unlessDropped, type NatsLinkState } from '../protocol/nats-connection.ts';

export interface AdapterVersionsOptions {
  readonly publisher: AdapterPublisher | null;
  /** the NATS connection's state (default: always up) */
  readonly natsLink?: NatsLinkState;
  /** versions kept for GetAdapter */
  readonly keep?: number;
  /** after a version is stored (and published, when NATS is there) */
  readonly onVersion?: (blob: AdapterBlob, published: boolean) => void;
  readonly warn: (message: string) => void;
}

export class AdapterVersions {
  readonly #kept = new Map<number, AdapterBlob>();
  readonly #options: AdapterVersionsOptions;
  #latest: AdapterBlob | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #natsFailed = false;
  readonly #onNats = new Set<number>();

  constructor(options: AdapterVersionsOptions) {
    this.#options = options;
  }

  get latest(): AdapterBlob | null {
    return this.#latest;
  }

  /** The blob of `version` (0: the newest), if kept. */
  get(version: number): AdapterBlob | undefined {
    return version === 0 && this.#latest && !this.#kept.has(0) ? this.#latest : this.#kept.get(version);
  }

  /** Is the kept `version` on NATS (published by this coordinator)? */
  onNats(version: number): boolean {
    return this.#onNats.has(version);
  }

  /** Makes `version` of `lora` available (idempotent); versions only move forward. */
  ensure(lora: LoraWeights, version: number): Promise<AdapterBlob> {
    const next = this.#queue.then(() => this.#add(lora, version));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #add(lora: LoraWeights, version: number): Promise<AdapterBlob> {
    const have = this.#kept.get(version);
    if (have) return have;
    if (this.#latest && version < this.#latest.version) throw new AdvclipError('INTERNAL', `adapter version ${version} is older than ${this.#latest.version} and no longer kept`);
    const blob = encodeAdapterBlob(lora, version);
    this.#kept.set(version, blob);
    this.#latest = blob;
    const keep = this.#options.keep ?? 4;
    for (const v of [...this.#kept.keys()].sort((a, b) => a - b).slice(0, Math.max(0, this.#kept.size - keep))) {
      this.#kept.delete(v);
      this.#onNats.delete(v);
    }
    let published = false;
    const publisher = this.#options.publisher;
    const natsUp = this.#options.natsLink?.up() ?? true;
    if (publisher && version >= 1 && !natsUp && !this.#natsFailed) {
      this.#options.warn(`NATS is down: adapter versions from ${version} go over gRPC until it is back`);
      this.#natsFailed = true;
    }
    if (publisher && version >= 1 && natsUp) {
      try {
        // a publish caught by a drop would wait for its timeout: give up on it at the drop
        await unlessDropped(publisher.publish(version, blob.bytes, blob.sha256), this.#options.natsLink, `adapter version ${version}`);
        published = true;
        this.#onNats.add(version);
        if (this.#natsFailed) this.#options.warn('NATS publishing works again');
        this.#natsFailed = false;
      } catch (err) {
        if (!this.#natsFailed) this.#options.warn(`cannot publish adapter versions to NATS (${(err as Error).message}); workers fetch them over gRPC`);
        this.#natsFailed = true;
      }
    }
    this.#options.onVersion?.(blob, published);
    return blob;
  }
}
