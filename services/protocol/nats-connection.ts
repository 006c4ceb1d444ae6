/**
 * One NATS connection per process, reconnecting forever once it is up.
 * When the first connect fails the caller gets a NatsUnavailable value (not
 * an exception from deep inside) and falls back to gRPC GetAdapter.
 * TLS: a `tls://` server or `tls` options make the connection require TLS
 * and verify the server against the given CA (a server without TLS is
 * refused, never used in plain text); `nats://` without `tls` stays plain.
 */
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { AdvclipError, invalidArgument, unreadableFile } from '../core/errors.ts';
import { subjectsFor, type Subjects } from './subjects.ts';

export interface NatsConnectOptions {
  /** e.g. "nats://127.0.0.1:4222" (several: a cluster). */
  readonly servers: string | readonly string[];
  /** user/password auth (both or neither). */
  readonly user?: string;
  readonly password?: string;
  /** Token auth, instead of user/password. */
  readonly token?: string;
  /** Connection name shown by the server, e.g. "advclip-worker-3". */
  readonly name?: string;
  /** Cluster name prefixing subjects and buckets (see subjects.ts). */
  readonly cluster?: string;
  /** First-connect timeout. */
  readonly connectTimeoutMs?: number;
  /** Wait between reconnect attempts after the connection was lost. */
  readonly reconnectWaitMs?: number;
  /** TLS to the server; implied (with the system CAs) by a tls:// server. */
  readonly tls?: NatsTls;
}

export interface NatsTls {
  /** PEM CA the server's certificate must chain to (default: the system CAs). */
  readonly caFile?: string;
  /** PEM client certificate and key (both or neither), for servers that verify clients. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** Whether this connection must be TLS: a tls:// server or TLS options. */
const natsWantsTls = (servers: readonly string[], tls: NatsTls | undefined): boolean =>
  tls !== undefined || servers.some((s) => s.startsWith('tls://'));

/** The TLS options of nats.js, with the PEM files read now: a missing file is a configuration error, not "NATS unavailable". */
function natsTlsOptions(tls: NatsTls): NonNullable<NodeConnectionOptions['tls']> {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw invalidArgument('NATS TLS: give both a client certificate and its key, or neither');
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw unreadableFile(`NATS TLS file ${path} cannot be read`, err);
    }
  };
  return {
    ...(tls.caFile !== undefined ? { ca: read(tls.caFile) } : {}),
    ...(tls.certFile !== undefined ? { cert: read(tls.certFile), key: read(tls.keyFile!) } : {}),
  };
}

export interface NatsLink {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  /** Drains and closes the connection. */
  close(): Promise<void>;
}

export interface NatsUnavailable {
  readonly kind: 'nats-unavailable';
  /** UNAVAILABLE (no server) or FAILED_PRECONDITION (credentials refused). */
  readonly error: AdvclipError;
}

export const isNatsUnavailable = (value: NatsLink | NatsUnavailable): value is NatsUnavailable =>
  'kind' in value && value.kind === 'nats-unavailable';

/** Whether a link is up, from its status events (it reconnects by itself), and a signal when it drops. */
export interface NatsLinkState {
  up(): boolean;
  /** calls `f` each time the connection drops; returns the unsubscribe */
  onDown(f: () => void): () => void;
}

export function watchLinkState(link: NatsLink, log?: (message: string) => void): NatsLinkState {
  let up = true;
  const onDown = new Set<() => void>();
  void (async () => {
    for await (const s of link.nc.status()) {
      if (s.type === 'disconnect' && up) {
        up = false;
        log?.('NATS connection lost; adapter versions go over gRPC until it is back');
        for (const f of [...onDown]) f();
      } else if (s.type === 'reconnect' && !up) {
        up = true;
        log?.('NATS connection is back');
      }
    }
  })().catch(() => undefined);
  return {
    up: () => up,
    onDown: (f) => {
      onDown.add(f);
      return () => onDown.delete(f);
    },
  };
}

/** Rejects with UNAVAILABLE when `state` drops before `promise` settles (the promise itself is left to run). */
export async function unlessDropped<T>(promise: Promise<T>, state: NatsLinkState | undefined, what: string): Promise<T> {
  if (!state) return promise;
  let off: () => unknown = () => undefined;
  const dropped = new Promise<never>((_, reject) => {
    off = state.onDown(() => reject(new AdvclipError('UNAVAILABLE', `${what}: the NATS connection dropped`)));
  });
  dropped.catch(() => undefined);
  promise.catch(() => undefined);
  try {
    return await Promise.race([promise, dropped]);
  } finally {
    off();
  }
}

export async function connectNats(options: NatsConnectOptions): Promise<NatsLink | NatsUnavailable> {
  if ((options.user === undefined) !== (options.password === undefined)) {
    throw new AdvclipError('INVALID_ARGUMENT', 'NATS: give both user and password, or neither');
  }
  if (options.token !== undefined && options.user !== undefined) {
    throw new AdvclipError('INVALID_ARGUMENT', 'NATS: give a token or user/password, not both');
  }
  const subjects = subjectsFor(options.cluster);
  const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  const tls = natsWantsTls(servers, options.tls) ? natsTlsOptions(options.tls ?? {}) : undefined;
  try {
    const nc = await connect({
      servers,
      ...(tls ? { tls } : {}),
      user: options.user,
      pass: options.password,
      token: options.token,
      name: options.name,
      timeout: options.connectTimeoutMs ?? 2_000,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectWaitMs ?? 250,
    });
    return {
      nc,
      subjects,
      close: async () => {
        if (nc.isClosed()) return;
        await nc.drain().catch(() => nc.close());
      },
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const refused = /author|auth/i.test(message);
    const tlsFailed = !refused && /tls|certificate|self[- ]signed|altnames|ssl/i.test(message);
    const what = refused ? 'refused our credentials' : tlsFailed ? 'failed TLS (is it serving TLS with a certificate from the given CA, --nats-ca?)' : 'is not reachable';
    return {
      kind: 'nats-unavailable',
      error: new AdvclipError(refused || tlsFailed ? 'FAILED_PRECONDITION' : 'UNAVAILABLE', `NATS at ${servers.join(', ')} ${what}: ${message}`, { cause: err }),
    };
  }
}
