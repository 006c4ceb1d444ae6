/**
 * Adapter versions on NATS JetStream. The coordinator puts each version
 * into the KV key `adapter.latest` (adapter-latest.ts): the safetensors
 * blob itself when it fits in one message, else a pointer to the blob it
 * put into the object store first. Workers watch the key and hold a
 * version only once its blob's SHA-256 matches. The key keeps the last
 * `keep` versions as history, so a worker can still fetch one by number.
 */
import { createHash } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Kvm } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import { Objm, setSha256Backend } from '@nats-io/obj';
import { AdvclipError, type ErrorCode } from '../core/errors.ts';
import { encodeInlineLatest, encodeObjectLatest, parseLatest, type LatestAdapter } from './adapter-latest.ts';
import type { NatsLink } from './nats-connection.ts';

/** A version on NATS: its number and the SHA-256 of its blob. */
export interface AdapterPointer {
  readonly version: number;
  /** SHA-256 of the blob, lowercase hex. */
  readonly sha256: string;
}

export interface PublishedAdapter extends AdapterPointer {
  /** in the `adapter.latest` message itself, or in the object store (too big for one message) */
  readonly carried: 'inline' | 'object';
}

export interface HeldAdapter extends AdapterPointer {
  readonly bytes: Uint8Array;
}

export type LogFn = (message: string) => void;

// The object store hashes every chunk it puts and gets; node:crypto is ~10x
// faster than its default pure-JS SHA-256.
setSha256Backend('native');

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Versions kept on NATS unless the publisher says otherwise. */
const DEFAULT_KEEP = 4;

interface AdapterBuckets {
  readonly kv: KV;
  readonly objects: ObjectStore;
}

/** Creates (or binds to) the KV bucket, keeping `history` values of a key, and the object store. */
async function openBuckets(link: NatsLink, history: number): Promise<AdapterBuckets> {
  try {
    const [kv, objects] = await Promise.all([
      new Kvm(link.nc).create(link.subjects.adapterKvBucket, { history }),
      new Objm(link.nc).create(link.subjects.adapterObjectBucket),
    ]);
    return { kv, objects };
  } catch (err) {
    throw wrapNatsError('UNAVAILABLE', 'cannot open the adapter buckets on NATS JetStream', err);
  }
}

/** A bucket made by an earlier run (or another keep) keeps as many versions as this publisher says. */
async function keepHistory(link: NatsLink, kv: KV, history: number): Promise<void> {
  const status = await kv.status();
  if (status.history === history) return;
  const jsm = await jetstreamManager(link.nc);
  await jsm.streams.update(status.streamInfo.config.name, { ...status.streamInfo.config, max_msgs_per_subject: history });
}

export interface AdapterPublisherOptions {
  /** Versions kept on NATS (newest): the history of `adapter.latest`, and blobs in the object store. */
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
  /** Versions whose blobs are in the object store (too big to go inline). */
  readonly #stored: Set<number>;
  #lastPublished = 0;
  #closed = false;

  private constructor(link: NatsLink, buckets: AdapterBuckets, stored: Set<number>, options: AdapterPublisherOptions) {
    this.#link = link;
    this.#buckets = buckets;
    this.#stored = stored;
    this.#keep = options.keep ?? DEFAULT_KEEP;
    this.#log = options.log ?? (() => undefined);
  }

  static async open(link: NatsLink, options: AdapterPublisherOptions = {}): Promise<AdapterPublisher> {
    const keep = options.keep ?? DEFAULT_KEEP;
    if (!Number.isSafeInteger(keep) || keep < 1 || keep > 64) {
      throw new AdvclipError('INVALID_ARGUMENT', `adapter publisher: keep must be an integer in [1, 64] (a KV history), got ${keep}`);
    }
    const buckets = await openBuckets(link, keep);
    const stored = new Set<number>();
    try {
      await keepHistory(link, buckets.kv, keep);
      for (const info of await buckets.objects.list()) {
        const version = link.subjects.versionOfAdapterObject(info.name);
        if (version !== undefined && !info.deleted) stored.add(version);
      }
    } catch (err) {
      throw wrapNatsError('UNAVAILABLE', 'cannot set up the adapter buckets', err);
    }
    return new AdapterPublisher(link, buckets, stored, options);
  }

  /**
   * Moves `adapter.latest` to `version`, carrying `blob` inline when it fits
   * in the server's max_payload, else storing it as `adapter-<version>`
   * first. `sha256` is the blob's when the caller has it already. Versions
   * must increase within one publisher; a resumed coordinator may republish
   * versions it published before it stopped.
   */
  async publish(version: number, blob: Uint8Array, sha256 = sha256Hex(blob)): Promise<PublishedAdapter> {
    if (this.#closed) throw new AdvclipError('FAILED_PRECONDITION', 'adapter publisher is closed');
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new AdvclipError('INVALID_ARGUMENT', `adapter version must be an integer >= 1, got ${version}`);
    }
    if (version <= this.#lastPublished) {
      throw new AdvclipError('FAILED_PRECONDITION', `adapter version ${version} is not newer than ${this.#lastPublished}`);
    }
    const maxPayload = this.#link.nc.info?.max_payload ?? 0;
    const inline = encodeInlineLatest(version, sha256, blob, maxPayload);
    try {
      let value = inline;
      if (!value) {
        const object = this.#link.subjects.adapterObject(version);
        // one chunk per max_payload instead of 128 KiB: fewer messages per version
        await this.#buckets.objects.putBlob({ name: object, options: { max_chunk_size: maxPayload || undefined } }, blob);
        this.#stored.add(version);
        value = encodeObjectLatest(version, sha256, object);
      }
      await this.#buckets.kv.put(this.#link.subjects.latestAdapterKey, value);
    } catch (err) {
      throw wrapNatsError('UNAVAILABLE', `cannot publish adapter version ${version}`, err);
    }
    this.#lastPublished = version;
    await this.#prune();
    return { version, sha256, carried: inline ? 'inline' : 'object' };
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
   * Forgets what an earlier run left: purges `adapter.latest` (with its
   * history) and deletes every adapter blob. A coordinator starts with it,
   * so no worker takes a previous run's version (and then ignores this
   * run's lower numbers).
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
  /** Refused versions (wrong hash, missing blob, malformed `adapter.latest`) and reconnects. */
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
  /** Values of `adapter.latest` are considered one at a time, in arrival order. */
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
    const subscriber = new AdapterSubscriber(link, await openBuckets(link, DEFAULT_KEEP), options);
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
   * (e.g. DATA_LOSS) if the newest value at or past `version` was refused,
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
   * Fetches and verifies one version kept on NATS (e.g. a Task's
   * adapter_version and adapter_sha256) from the history of
   * `adapter.latest`. It becomes the held version if newer.
   */
  async fetch(version: number, sha256: string): Promise<HeldAdapter> {
    if (this.#held?.version === version && this.#held.sha256 === sha256) return this.#held;
    const latest = await this.#findInHistory(version);
    if (latest.sha256 !== sha256) {
      throw new AdvclipError('DATA_LOSS', `adapter version ${version} on NATS has SHA-256 ${latest.sha256}, expected ${sha256}; not accepted`);
    }
    const adapter = await this.#verified(latest);
    if (!this.#held || adapter.version > this.#held.version) this.#hold(adapter);
    return adapter;
  }

  /**
   * One version kept on NATS, default the newest, checked against the
   * SHA-256 its value names; it is not held (for `advclip adapter pull`).
   */
  async read(version?: number): Promise<HeldAdapter> {
    return this.#verified(version === undefined ? await this.#newest() : await this.#findInHistory(version));
  }

  async #newest(): Promise<LatestAdapter> {
    let entry;
    try {
      entry = await this.#buckets.kv.get(this.#link.subjects.latestAdapterKey);
    } catch (err) {
      throw wrapNatsError('UNAVAILABLE', `cannot read ${this.#link.subjects.latestAdapterKey}`, err);
    }
    if (!entry || entry.operation !== 'PUT') {
      throw new AdvclipError('NOT_FOUND', `no adapter version on NATS (bucket ${this.#link.subjects.adapterKvBucket}, key ${this.#link.subjects.latestAdapterKey}): has a run published one?`);
    }
    return parseLatest(entry.value);
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
          if (entry.operation === 'PUT') this.#consider(entry.value);
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
          if (entry && entry.operation === 'PUT') this.#consider(entry.value);
        } catch (err) {
          this.#log(`catch-up read of adapter.latest failed: ${err instanceof Error ? err.message : err}`);
        }
      }
    })();
  }

  #consider(value: Uint8Array): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#closed) return;
      let latest: LatestAdapter;
      try {
        latest = parseLatest(value);
      } catch (err) {
        this.#log((err as Error).message);
        return;
      }
      if (this.#held && latest.version <= this.#held.version) return;
      try {
        this.#hold(await this.#verified(latest));
      } catch (err) {
        const error = err instanceof AdvclipError ? err : wrapNatsError('UNAVAILABLE', 'adapter download failed', err);
        this.#refuse(latest.version, error);
      }
    });
  }

  /** The newest value of `version` in the history of `adapter.latest`; NOT_FOUND when no longer kept. */
  async #findInHistory(version: number): Promise<LatestAdapter> {
    let found: LatestAdapter | undefined;
    try {
      for await (const entry of await this.#buckets.kv.history({ key: this.#link.subjects.latestAdapterKey })) {
        if (entry.operation !== 'PUT') continue;
        try {
          const latest = parseLatest(entry.value);
          if (latest.version === version) found = latest;
        } catch {
          // a malformed value was refused when it arrived; it holds no version
        }
      }
    } catch (err) {
      throw wrapNatsError('UNAVAILABLE', `adapter version ${version}: cannot read the history of adapter.latest`, err);
    }
    if (!found) throw new AdvclipError('NOT_FOUND', `adapter version ${version} is no longer kept on NATS`);
    return found;
  }

  /** The blob of `latest` (inline, or downloaded from the object store), once its SHA-256 matches. */
  async #verified(latest: LatestAdapter): Promise<HeldAdapter> {
    const where = 'inline' in latest ? 'inline blob' : `blob "${latest.object}"`;
    const bytes = 'inline' in latest ? latest.inline : await this.#download(latest.version, latest.object);
    const actual = sha256Hex(bytes);
    if (actual !== latest.sha256) {
      throw new AdvclipError('DATA_LOSS', `adapter version ${latest.version}: ${where} has SHA-256 ${actual}, expected ${latest.sha256}; not accepted`);
    }
    // an owned copy (a Buffer's slice() would be a view): the client's buffer is a view into a larger message buffer
    return { version: latest.version, sha256: latest.sha256, bytes: new Uint8Array(bytes) };
  }

  async #download(version: number, object: string): Promise<Uint8Array> {
    let bytes: Uint8Array | null;
    try {
      bytes = await this.#buckets.objects.getBlob(object);
    } catch (err) {
      const corrupt = /digest|sha/i.test(err instanceof Error ? err.message : '');
      throw wrapNatsError(corrupt ? 'DATA_LOSS' : 'UNAVAILABLE', `adapter version ${version}: cannot read blob "${object}"`, err);
    }
    if (bytes === null) throw new AdvclipError('NOT_FOUND', `adapter version ${version}: blob "${object}" is not in the object store`);
    return bytes;
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

const closedError = () => new AdvclipError('FAILED_PRECONDITION', 'adapter subscriber is closed');

function wrapNatsError(code: ErrorCode, context: string, err: unknown): AdvclipError {
  if (err instanceof AdvclipError) return err;
  return new AdvclipError(code, `${context}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
