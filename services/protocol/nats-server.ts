/**
 * A real `nats-server` with JetStream, spawned on 127.0.0.1 at a free port.
 * Tests and `advclip cluster` use it when no `--nats URL` is given. The
 * config (with any password) goes into a 0600 file, never onto argv.
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
  /** Port on 127.0.0.1; default: a free one. */
  readonly port?: number;
  /** Require user/password auth (both or neither). */
  readonly user?: string;
  readonly password?: string;
  /** How long to wait for the server to accept connections. */
  readonly readyTimeoutMs?: number;
}

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

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  if ((options.user === undefined) !== (options.password === undefined)) {
    throw new AdvclipError('INVALID_ARGUMENT', 'nats-server: give both user and password, or neither');
  }
  const binary = findNatsServerBinary(options.binary);
  const workDir = await mkdtemp(join(tmpdir(), 'advclip-nats-'));
  const storeDir = options.storeDir ?? join(workDir, 'jetstream');
  const port = options.port ?? (await freeLoopbackPort());
  const configPath = join(workDir, 'nats-server.conf');
  await writeFile(configPath, serverConfig(port, storeDir, options), { mode: 0o600 });
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;

  let child: ChildProcess | undefined;
  let stderrTail = '';
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  const start = async () => {
    stderrTail = '';
    const proc = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    });
    child = proc;
    const exited = new Promise<never>((_, reject) => {
      proc.once('error', (err) => reject(new AdvclipError('UNAVAILABLE', `nats-server failed to start: ${err.message}`)));
      proc.once('exit', (code, signal) =>
        reject(new AdvclipError('UNAVAILABLE', `nats-server exited (${signal ?? code}) before it was ready:\n${stderrTail}`)),
      );
    });
    exited.catch(() => undefined);
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

function serverConfig(port: number, storeDir: string, options: NatsServerOptions): string {
  const lines = [`listen: "127.0.0.1:${port}"`, `jetstream { store_dir: ${JSON.stringify(storeDir)} }`];
  if (options.user !== undefined && options.password !== undefined) {
    lines.push(`authorization { user: ${JSON.stringify(options.user)}, password: ${JSON.stringify(options.password)} }`);
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
