/**
 * Adapter versions on NATS JetStream. The coordinator puts each version's
 * safetensors blob into the object store, then points the KV key
 * `adapter.latest` at it ({version, sha256, object}). Workers watch the key,
 * prefetch the blob and hold it only once its SHA-256 matches.
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { Kvm } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import { Objm, setSha256Backend } from '@nats-io/obj';
import { AdvclipError, type ErrorCode } from '../core/errors.ts';
import type { NatsLink } from './nats-connection.ts';

/** The value of `adapter.latest`. */
export interface AdapterPointer {
  readonly version: number;
  /** SHA-256 of the blob, lowercase hex. */
  readonly sha256: string;
  /** Object store name of the blob. */
  readonly object: string;
}

export interface HeldAdapter extends AdapterPointer {
  readonly bytes: Uint8Array;
}

export type LogFn = (message: string) => void;

// The object store hashes every chunk it puts and gets; node:crypto is ~10x
// faster than its default pure-JS SHA-256.
setSha256Backend('native');

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

interface AdapterBuckets {
  readonly kv: KV;
  readonly objects: ObjectStore;
}

/** Creates (or binds to) the KV bucket and object store; same config on both sides. */
async function openBuckets(link: NatsLink): Promise<AdapterBuckets> {
  try {
    const [kv, objects] = await Promise.all([
      new Kvm(link.nc).create(link.subjects.adapterKvBucket, { history: 1 }),
      new Objm(link.nc).create(link.subjects.adapterObjectBucket),
    ]);
    return { kv, objects };
  } catch (err) {
    throw wrapNatsError('UNAVAILABLE', 'cannot open the adapter buckets on NATS JetStream', err);
  }
}

export interface AdapterPublisherOptions {
  /** Adapter blobs kept in the object store (newest versions); older ones are deleted. */
  readonly keep?: number;
  /** Non-fatal problems (a failed prune). */
  readonly log?: LogFn;
}

/** Coordinator side. */
export class AdapterPublisher {
  readonly #link: NatsLink;
  readonly #buckets: AdapterBuckets;
  readonly #keep: number;
  readonly #log: LogFn;
  /** Versions whose blobs are in the object store. */
  readonly #stored: Set<number>;
  #lastPublished = 0;
  #closed = false;

  private constructor(link: NatsLink, buckets: AdapterBuckets, stored: Set<number>, options: AdapterPublisherOptions) {
    this.#link = link;
    this.#buckets = buckets;
    this.#stored = stored;
    this.#keep = options.keep ?? 4;
    this.#log = options.log ?? (() => undefined);
  }

  static async open(link: NatsLink, options: AdapterPublisherOptions = {}): Promise<AdapterPublisher> {
    const keep = options.keep ?? 4;
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new AdvclipError('INVALID_ARGUMENT', `adapter publisher: keep must be an integer >= 1, got ${keep}`);
    }
    const buckets = await openBuckets(link);
    const stored = new Set<number>();
    try {
      for (const info of await buckets.objects.list()) {
        const version = link.subjects.versionOfAdapterObject(info.name);
        if (version !== undefined && !info.deleted) stored.add(version);
      }
    } catch (err) {
      throw wrapNatsError('UNAVAILABLE', 'cannot list the adapter object store', err);
    }
    return new AdapterPublisher(link, buckets, stored, options);
  }

  /**
   * Stores `blob` as `adapter-<version>`, then moves `adapter.latest` to it.
   * Versions must increase within one publisher; a resumed coordinator may
   * republish versions it published before it stopped.
   */
  async publish(version: number, blob: Uint8Array): Promise<AdapterPointer> {
    if (this.#closed) throw new AdvclipError('FAILED_PRECONDITION', 'adapter publisher is closed');
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new AdvclipError('INVALID_ARGUMENT', `adapter version must be an integer >= 1, got ${version}`);
    }
    if (version <= this.#lastPublished) {
      throw new AdvclipError('FAILED_PRECONDITION', `adapter version ${version} is not newer than ${this.#lastPublished}`);
    }
    const pointer: AdapterPointer = {
      version,
      sha256: sha256Hex(blob),
      object: this.#link.subjects.adapterObject(version),
    };
    try {
      // One chunk per server max_payload (default 1 MiB) instead of 128 KiB: fewer messages per version.
      const max_chunk_size = this.#link.nc.info?.max_payload;
      await this.#buckets.objects.putBlob({ name: pointer.object, options: { max_chunk_size } }, blob);
      this.#stored.add(version);
      await this.#buckets.kv.put(this.#link.subjects.latestAdapterKey, JSON.stringify(pointer));
    } catch (err) {
      throw wrapNatsError('UNAVAILABLE', `cannot publish adapter version ${version}`, err);
    }
    this.#lastPublished = version;
    await this.#prune();
    return pointer;
  }

  async #prune(): Promise<void> {
    const newestFirst = [...this.#stored].sort((a, b) => b - a);
    for (const version of newestFirst.slice(this.#keep)) {
      try {
        await this.#buckets.objects.delete(this.#link.subjects.adapterObject(version));
        this.#stored.delete(version);
      } catch (err) {
        this.#log(`could not delete old adapter blob ${version}: ${err instanceof Error ? err.message : err}`);
      }
    }
  }

  /**
   * Forgets what an earlier run left: purges `adapter.latest` and deletes
   * every adapter blob. A coordinator starts with it, so no worker takes a
   * previous run's version (and then ignores this run's lower numbers).
   */
  async reset(): Promise<void> {
    try {
      await this.#buckets.kv.purge(this.#link.subjects.latestAdapterKey);
      for (const version of [...this.#stored]) {
        await this.#buckets.objects.delete(this.#link.subjects.adapterObject(version));
        this.#stored.delete(version);
      }
    } catch (err) {
      throw wrapNatsError('UNAVAILABLE', 'cannot reset the adapter buckets', err);
    }
    this.#lastPublished = 0;
  }

  /** Stops publishing; the NATS connection belongs to the caller. */
  async close(): Promise<void> {
    this.#closed = true;
  }
}

export interface AdapterSubscriberOptions {
  /** Refused versions (wrong hash, missing blob, bad pointer) and reconnects. */
  readonly log?: LogFn;
}

interface Waiter {
  readonly version: number;
  resolve(adapter: HeldAdapter): void;
  reject(err: AdvclipError): void;
}

/** Worker side: holds the newest verified adapter version. */
export class AdapterSubscriber {
  readonly #link: NatsLink;
  readonly #buckets: AdapterBuckets;
  readonly #log: LogFn;
  readonly #listeners = new Set<(adapter: HeldAdapter) => void>();
  readonly #waiters = new Set<Waiter>();
  /** Newest version refused and why; cleared when a newer one is held. */
  #refused: { version: number; error: AdvclipError } | undefined;
  #held: HeldAdapter | undefined;
  /** Pointers are considered one at a time, in arrival order. */
  #queue: Promise<void> = Promise.resolve();
  #stopWatch: (() => void) | undefined;
  #stopStatus: (() => void) | undefined;
  #closed = false;

  private constructor(link: NatsLink, buckets: AdapterBuckets, options: AdapterSubscriberOptions) {
    this.#link = link;
    this.#buckets = buckets;
    this.#log = options.log ?? (() => undefined);
  }

  static async open(link: NatsLink, options: AdapterSubscriberOptions = {}): Promise<AdapterSubscriber> {
    const subscriber = new AdapterSubscriber(link, await openBuckets(link), options);
    subscriber.#watchStatus();
    await subscriber.#watchLatest();
    return subscriber;
  }

  /** The newest verified version, if any. */
  latest(): HeldAdapter | undefined {
    return this.#held;
  }

  /** Called for each newly held version; returns the unsubscribe function. */
  onVersion(callback: (adapter: HeldAdapter) => void): () => void {
    this.#listeners.add(callback);
    return () => this.#listeners.delete(callback);
  }

  /**
   * Resolves once a version >= `version` is held. Rejects with the refusal
   * (e.g. DATA_LOSS) if the newest pointer at or past `version` was refused,
   * or DEADLINE_EXCEEDED after `timeoutMs`.
   */
  waitForVersion(version: number, timeoutMs: number): Promise<HeldAdapter> {
    if (this.#held && this.#held.version >= version) return Promise.resolve(this.#held);
    if (this.#refused && this.#refused.version >= version) return Promise.reject(this.#refused.error);
    if (this.#closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(
          new AdvclipError(
            'DEADLINE_EXCEEDED',
            `adapter version ${version} not received within ${timeoutMs} ms (holding ${this.#held?.version ?? 'none'})`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        version,
        resolve: (adapter) => {
          clearTimeout(timer);
          resolve(adapter);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  /**
   * Fetches and verifies one version from the object store (e.g. a Task's
   * adapter_version and adapter_sha256). It becomes the held version if newer.
   */
  async fetch(version: number, sha256: string): Promise<HeldAdapter> {
    if (this.#held?.version === version && this.#held.sha256 === sha256) return this.#held;
    const adapter = await this.#download({ version, sha256, object: this.#link.subjects.adapterObject(version) });
    if (!this.#held || adapter.version > this.#held.version) this.#hold(adapter);
    return adapter;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopWatch?.();
    this.#stopStatus?.();
    for (const waiter of this.#waiters) waiter.reject(closedError());
    this.#waiters.clear();
    this.#listeners.clear();
    await this.#queue;
  }

  /** Watches `adapter.latest`; restarts the watch if it ends while open. */
  async #watchLatest(): Promise<void> {
    const watch = await this.#buckets.kv.watch({ key: this.#link.subjects.latestAdapterKey });
    this.#stopWatch = () => watch.stop();
    void (async () => {
      try {
        for await (const entry of watch) {
          if (entry.operation === 'PUT') this.#consider(entry.string());
        }
      } catch (err) {
        this.#log(`adapter watch ended: ${err instanceof Error ? err.message : err}`);
      }
      while (!this.#closed) {
        await new Promise((r) => setTimeout(r, 500));
        if (this.#closed) return;
        try {
          await this.#watchLatest();
          return;
        } catch (err) {
          this.#log(`adapter watch restart failed: ${err instanceof Error ? err.message : err}`);
        }
      }
    })();
  }

  /** After a reconnect, reads `adapter.latest` in case the watch missed it. */
  #watchStatus(): void {
    const iterator = this.#link.nc.status()[Symbol.asyncIterator]();
    this.#stopStatus = () => void iterator.return?.();
    void (async () => {
      for (let next = await iterator.next(); !next.done && !this.#closed; next = await iterator.next()) {
        if (next.value.type !== 'reconnect') continue;
        this.#log('NATS reconnected; catching up on adapter.latest');
        try {
          const entry = await this.#buckets.kv.get(this.#link.subjects.latestAdapterKey);
          if (entry && entry.operation === 'PUT') this.#consider(entry.string());
        } catch (err) {
          this.#log(`catch-up read of adapter.latest failed: ${err instanceof Error ? err.message : err}`);
        }
      }
    })();
  }

  #consider(json: string): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#closed) return;
      let pointer: AdapterPointer;
      try {
        pointer = parsePointer(json);
      } catch (err) {
        this.#log((err as Error).message);
        return;
      }
      if (this.#held && pointer.version <= this.#held.version) return;
      try {
        this.#hold(await this.#download(pointer));
      } catch (err) {
        const error = err instanceof AdvclipError ? err : wrapNatsError('UNAVAILABLE', 'adapter download failed', err);
        this.#refuse(pointer.version, error);
      }
    });
  }

  async #download(pointer: AdapterPointer): Promise<HeldAdapter> {
    let bytes: Uint8Array | null;
    try {
      bytes = await this.#buckets.objects.getBlob(pointer.object);
    } catch (err) {
      const corrupt = /digest|sha/i.test(err instanceof Error ? err.message : '');
      throw wrapNatsError(corrupt ? 'DATA_LOSS' : 'UNAVAILABLE', `adapter version ${pointer.version}: cannot read blob "${pointer.object}"`, err);
    }
    if (bytes === null) {
      throw new AdvclipError('NOT_FOUND', `adapter version ${pointer.version}: blob "${pointer.object}" is not in the object store`);
    }
    const actual = sha256Hex(bytes);
    if (actual !== pointer.sha256) {
      throw new AdvclipError(
        'DATA_LOSS',
        `adapter version ${pointer.version}: blob "${pointer.object}" has SHA-256 ${actual}, expected ${pointer.sha256}; not accepted`,
      );
    }
    // An owned copy: the client's buffer is a view into a larger message buffer.
    return { ...pointer, bytes: new Uint8Array(bytes) };
  }

  #hold(adapter: HeldAdapter): void {
    this.#held = adapter;
    if (this.#refused && this.#refused.version <= adapter.version) this.#refused = undefined;
    for (const waiter of [...this.#waiters]) {
      if (waiter.version <= adapter.version) {
        this.#waiters.delete(waiter);
        waiter.resolve(adapter);
      }
    }
    for (const listener of this.#listeners) listener(adapter);
  }

  #refuse(version: number, error: AdvclipError): void {
    this.#log(error.message);
    this.#refused = { version, error };
    for (const waiter of [...this.#waiters]) {
      if (waiter.version <= version) {
        this.#waiters.delete(waiter);
        waiter.reject(error);
      }
    }
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function parsePointer(json: string): AdapterPointer {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new AdvclipError('DATA_LOSS', `adapter.latest is not JSON: ${json.slice(0, 200)}`);
  }
  const { version, sha256, object } = (value ?? {}) as Record<string, unknown>;
  if (
    typeof version !== 'number' ||
    !Number.isSafeInteger(version) ||
    version < 1 ||
    typeof sha256 !== 'string' ||
    !SHA256_HEX.test(sha256) ||
    typeof object !== 'string' ||
    object === ''
  ) {
    throw new AdvclipError('DATA_LOSS', `adapter.latest is not {version, sha256, object}: ${json.slice(0, 200)}`);
  }
  return { version, sha256, object };
}

const closedError = () => new AdvclipError('FAILED_PRECONDITION', 'adapter subscriber is closed');

function wrapNatsError(code: ErrorCode, context: string, err: unknown): AdvclipError {
  if (err instanceof AdvclipError) return err;
  return new AdvclipError(code, `${context}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
