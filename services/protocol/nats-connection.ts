/**
 * One NATS connection per process, reconnecting forever once it is up.
 * When the first connect fails the caller gets a NatsUnavailable value (not
 * an exception from deep inside) and falls back to gRPC GetAdapter.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AdvclipError } from '../core/errors.ts';
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

export async function connectNats(options: NatsConnectOptions): Promise<NatsLink | NatsUnavailable> {
  if ((options.user === undefined) !== (options.password === undefined)) {
    throw new AdvclipError('INVALID_ARGUMENT', 'NATS: give both user and password, or neither');
  }
  if (options.token !== undefined && options.user !== undefined) {
    throw new AdvclipError('INVALID_ARGUMENT', 'NATS: give a token or user/password, not both');
  }
  const subjects = subjectsFor(options.cluster);
  const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  try {
    const nc = await connect({
      servers,
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
    return {
      kind: 'nats-unavailable',
      error: new AdvclipError(
        refused ? 'FAILED_PRECONDITION' : 'UNAVAILABLE',
        `NATS at ${servers.join(', ')} ${refused ? 'refused our credentials' : 'is not reachable'}: ${message}`,
        { cause: err },
      ),
    };
  }
}
