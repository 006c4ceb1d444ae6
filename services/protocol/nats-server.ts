/**
 * A real `nats-server` with JetStream, spawned on 127.0.0.1 at a free port.
 * Tests and `advclip cluster` use it when no `--nats URL` is given. The
 * config (with any password) goes into a 0600 file, never onto argv.
 * Users may carry permissions; NATS_WORKER_PERMISSIONS is the worker's of
 * deploy/nats/nats.conf.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { AdvclipError } from '../core/errors.ts';

export interface NatsServerOptions {
  /** Path or name of the binary; default: `nats-server` on PATH or in /usr/sbin. */
  readonly binary?: string;
  /** JetStream store directory; default: a fresh temp dir removed by close(). */
  readonly storeDir?: string;
  /** Port on 127.0.0.1; default: one nats-server picks itself (read from its log: no race for a free port). */
  readonly port?: number;
  /** Require user/password auth (both or neither): one user with every right. */
  readonly user?: string;
  readonly password?: string;
  /** Require user/password auth: several users, each with its own rights (instead of user/password). */
  readonly users?: readonly NatsUser[];
  /** How long to wait for the server to accept connections. */
  readonly readyTimeoutMs?: number;
}

export interface NatsSubjectRules {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

export interface NatsPermissions {
  readonly publish?: NatsSubjectRules;
  readonly subscribe?: NatsSubjectRules;
}

export interface NatsUser {
  readonly user: string;
  readonly password: string;
  /** none: every right */
  readonly permissions?: NatsPermissions;
}

/**
 * A worker's rights (deploy/nats/nats.conf, checked by a test to be the
 * same): read adapter versions (KV watch, object get) and use the
 * JetStream API for its own consumers; publish events; never write KV keys
 * or objects, nor create, change, purge or delete streams.
 */
export const NATS_WORKER_PERMISSIONS: NatsPermissions = Object.freeze({
  publish: {
    allow: ['$JS.API.>', '$JS.ACK.>', '$JS.FC.>', '_INBOX.>', 'advclip.>'],
    deny: ['$KV.>', '$O.>', '$JS.API.STREAM.CREATE.>', '$JS.API.STREAM.UPDATE.>', '$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.MSG.DELETE.>'],
  },
  subscribe: { allow: ['_INBOX.>', '$KV.>', '$O.>', 'advclip.>'] },
});

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` (no credentials in it). */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops the process (SIGTERM, then SIGKILL); the store is kept. */
  stop(): Promise<void>;
  /** Stops and starts again on the same port and store dir. */
  restart(): Promise<void>;
  /** stop() and remove the temp dirs this handle created. */
  close(): Promise<void>;
}

const SBIN_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** The nats-server binary, or an UNAVAILABLE error saying how to get one. */
export function findNatsServerBinary(binary = 'nats-server'): string {
  if (binary.includes('/')) {
    if (isExecutable(binary)) return binary;
  } else {
    const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN_DIRS];
    for (const dir of dirs) {
      const candidate = join(dir, binary);
      if (isExecutable(candidate)) return candidate;
    }
  }
  throw new AdvclipError(
    'UNAVAILABLE',
    `nats-server binary "${binary}" not found (looked on PATH and in ${SBIN_DIRS.join(', ')}); ` +
      'install it (apt-get install nats-server) or pass --nats URL to use a running server',
  );
}

/** Throws INVALID_ARGUMENT for contradictory auth options. */
export function checkNatsServerOptions(options: NatsServerOptions): void {
  if ((options.user === undefined) !== (options.password === undefined)) {
    throw new AdvclipError('INVALID_ARGUMENT', 'nats-server: give both user and password, or neither');
  }
  if (options.users !== undefined && options.user !== undefined) {
    throw new AdvclipError('INVALID_ARGUMENT', 'nats-server: give users or user/password, not both');
  }
  for (const u of options.users ?? []) {
    if (!u.user || !u.password) throw new AdvclipError('INVALID_ARGUMENT', 'nats-server: every user needs a name and a password');
  }
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  checkNatsServerOptions(options);
  const binary = findNatsServerBinary(options.binary);
  const workDir = await mkdtemp(join(tmpdir(), 'advclip-nats-'));
  const storeDir = options.storeDir ?? join(workDir, 'jetstream');
  // -1: nats-server binds a free port itself and logs it; restarts then keep that port
  let port = options.port ?? -1;
  const configPath = join(workDir, 'nats-server.conf');
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;

  let child: ChildProcess | undefined;
  let stderrTail = '';
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  const start = async () => {
    stderrTail = '';
    await writeFile(configPath, natsServerConfig(port, storeDir, options), { mode: 0o600 });
    const proc = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let listening: (port: number) => void;
    const bound = new Promise<number>((resolve) => (listening = resolve));
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-4000);
      const m = /Listening for client connections on [^\s]*:(\d+)/.exec(stderrTail);
      if (m) listening(Number(m[1]));
    });
    child = proc;
    const exited = new Promise<never>((_, reject) => {
      proc.once('error', (err) => reject(new AdvclipError('UNAVAILABLE', `nats-server failed to start: ${err.message}`)));
      proc.once('exit', (code, signal) =>
        reject(new AdvclipError('UNAVAILABLE', `nats-server exited (${signal ?? code}) before it was ready:\n${stderrTail}`)),
      );
    });
    exited.catch(() => undefined);
    if (port === -1) port = await within(Promise.race([bound, exited]), readyTimeoutMs, () => `nats-server did not log its port within ${readyTimeoutMs} ms:\n${stderrTail}`);
    await Promise.race([waitForInfo(port, readyTimeoutMs, () => stderrTail), exited]);
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (err) {
    await stop();
    process.removeListener('exit', killOnExit);
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      process.removeListener('exit', killOnExit);
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** The config file of a JetStream server on 127.0.0.1:`port` (-1: one it picks and logs) with `options`' users. */
export function natsServerConfig(port: number, storeDir: string, options: NatsServerOptions): string {
  const lines = ['host: "127.0.0.1"', `port: ${port}`, `jetstream { store_dir: ${JSON.stringify(storeDir)} }`];
  const users = options.users ?? (options.user !== undefined && options.password !== undefined ? [{ user: options.user, password: options.password }] : []);
  if (users.length > 0) {
    // JSON is valid nats-server config syntax
    const entries = users.map(({ user, password, permissions }) => JSON.stringify({ user, password, ...(permissions ? { permissions } : {}) }));
    lines.push(`authorization { users: [\n  ${entries.join(',\n  ')}\n] }`);
  }
  return lines.join('\n') + '\n';
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function within<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new AdvclipError('DEADLINE_EXCEEDED', message())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once the server answers a TCP connection with its INFO line. */
async function waitForInfo(port: number, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await sendsInfo(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new AdvclipError('DEADLINE_EXCEEDED', `nats-server on 127.0.0.1:${port} not ready after ${timeoutMs} ms:\n${log()}`);
}

function sendsInfo(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(data.toString().startsWith('INFO')));
  });
}
