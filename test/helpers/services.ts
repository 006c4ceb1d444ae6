/**
 * NATS (JetStream) and Prometheus for integration tests, on loopback.
 *
 * Where a Docker engine is reachable they run as containers of the images
 * docker-compose.yml names (nats:2.10-alpine, prom/prometheus:v2.53.2; with
 * no registry, deploy/docker/offline-base.sh builds local stand-ins), through
 * testcontainers' GenericContainer; elsewhere as the Debian binaries. Both
 * ways run the same command line on the same config file:
 * - Host networking: the server binds 127.0.0.1 itself, at a port it picks
 *   and logs (no race for a port that was free a moment ago), and Prometheus
 *   scrapes targets on the host's loopback. Nothing listens on another
 *   interface. (Ports published by testcontainers bind every interface, and
 *   from a bridge network the host is reachable only at its gateway address,
 *   where an endpoint bound to 127.0.0.1 is not.) This needs a local engine:
 *   on a remote one, or Docker Desktop's VM, "host" is another machine.
 * - The work dir is bind-mounted at its own path and the process runs as our
 *   uid:gid: paths in the config read the same, and what it writes is ours
 *   to remove.
 *
 * Under CI=true the engine and both images are required (.ci/run starts
 * dockerd and builds them). Elsewhere, without them, the binaries run, after
 * one loud line; without those the test skips (requires.ts).
 * ADVCLIP_TEST_SERVICES=container|binary forces one way.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenericContainer, getContainerRuntimeClient, ImageName, Wait, type StartedTestContainer } from 'testcontainers';
import { stringify } from 'yaml';
import {
  checkNatsServerOptions,
  natsServerConfig,
  startNatsServer,
  type NatsServer,
  type NatsServerOptions,
} from '../../services/protocol/nats-server.ts';
import { executable, inCI, missing, MissingDependency, NATS_SERVER, PROMETHEUS } from './requires.ts';

// Inside a container (a /.dockerenv, as on our machines) testcontainers would take the bridge
// gateway for the engine's host; the services here are on our loopback.
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
// Ryuk, testcontainers' reaper, is an image from a registry; close() and an exit hook remove ours.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

export type ServiceBackend = 'container' | 'binary';

interface ServiceSpec {
  readonly name: string;
  readonly image: string;
  readonly binary: readonly [name: string, how: string];
}

const NATS: ServiceSpec = { name: 'NATS', image: 'nats:2.10-alpine', binary: NATS_SERVER };
const PROM: ServiceSpec = { name: 'Prometheus', image: 'prom/prometheus:v2.53.2', binary: PROMETHEUS };

type Resolved = { readonly kind: 'container' } | { readonly kind: 'binary'; readonly path: string } | { readonly kind: 'skip'; readonly reason: string };

const resolved = new Map<ServiceSpec, Promise<Resolved>>();

/** Why `image` cannot run as a container here, or undefined. */
async function engineProblem(image: string): Promise<string | undefined> {
  let client;
  try {
    client = await getContainerRuntimeClient();
  } catch (err) {
    return `no Docker engine reachable (${(err as Error).message})`;
  }
  if (await client.image.exists(ImageName.fromString(image))) return undefined;
  return `image ${image} is not on the engine (with no registry, deploy/docker/offline-base.sh builds it)`;
}

async function resolve(spec: ServiceSpec): Promise<Resolved> {
  const forced = process.env.ADVCLIP_TEST_SERVICES;
  if (forced !== undefined && forced !== 'container' && forced !== 'binary') {
    throw new Error(`ADVCLIP_TEST_SERVICES=${forced}: expected container or binary`);
  }
  let problem: string | undefined;
  if (forced !== 'binary') {
    problem = await engineProblem(spec.image);
    if (problem === undefined) return { kind: 'container' };
    const how = 'start dockerd and run deploy/docker/offline-base.sh';
    if (forced === 'container') throw new MissingDependency(`${spec.name} container`, `ADVCLIP_TEST_SERVICES=container, but ${problem}; ${how}`);
    if (inCI()) throw new MissingDependency(`${spec.name} container`, `${problem}; ${how}`);
  }
  const [name, how] = spec.binary;
  const path = executable(name);
  if (!path) return { kind: 'skip', reason: missing(name, `not on PATH${problem ? `, and no container: ${problem}` : ''}`, how) };
  if (problem) process.stderr.write(`\n!!!!! ${spec.name} runs as the Debian binary, not as a container (under CI=true this fails): ${problem}\n`);
  return { kind: 'binary', path };
}

function resolveOnce(spec: ServiceSpec): Promise<Resolved> {
  if (!resolved.has(spec)) resolved.set(spec, resolve(spec));
  return resolved.get(spec)!;
}

async function ready(spec: ServiceSpec): Promise<Exclude<Resolved, { kind: 'skip' }>> {
  const r = await resolveOnce(spec);
  if (r.kind === 'skip') throw new Error(`${spec.name} is not available: ${r.reason}`);
  return r;
}

/** The `skip` option for tests that need NATS: false when a container or the binary can run. */
export async function natsSkip(): Promise<string | false> {
  const r = await resolveOnce(NATS);
  return r.kind === 'skip' ? r.reason : false;
}

/** The `skip` option for tests that need Prometheus. */
export async function prometheusSkip(): Promise<string | false> {
  const r = await resolveOnce(PROM);
  return r.kind === 'skip' ? r.reason : false;
}

/** A process's output, and a wait for a line in it. */
class LogTail {
  #text = '';
  #waiters = new Set<() => void>();

  get text(): string {
    return this.#text;
  }

  append(chunk: string): void {
    this.#text = (this.#text + chunk).slice(-64_000);
    for (const wake of this.#waiters) wake();
  }

  /** The first match of `pattern`, once it is logged. */
  match(pattern: RegExp, what: string, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(this.#text);
        if (!m) return;
        done();
        resolve(m);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what} not logged within ${timeoutMs} ms:\n${this.#text.slice(-4000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

let containers = 0;
const running = new Set<string>();
process.once('exit', () => {
  // a test process that dies without close(): no reaper removes what it started
  if (running.size > 0) spawnSync('docker', ['rm', '-f', ...running], { stdio: 'ignore' });
});

interface ContainerRun {
  readonly container: StartedTestContainer;
  readonly log: LogTail;
  /** Stops (SIGTERM, then SIGKILL after 5 s) and removes the container. */
  stop(): Promise<void>;
}

/** `image` with `command`, on the host's network as our uid:gid, `dirs` bind-mounted at their own paths. */
async function runContainer(
  spec: ServiceSpec,
  run: { command: string[]; dirs: readonly string[]; files?: readonly string[]; ready: RegExp; timeoutMs: number },
): Promise<ContainerRun> {
  const log = new LogTail();
  const container = await new GenericContainer(spec.image)
    .withName(`advclip-test-${spec.name.toLowerCase()}-${process.pid}-${++containers}`)
    .withLabels({ 'org.advclip.test': spec.name.toLowerCase() })
    .withNetworkMode('host')
    .withUser(`${process.getuid!()}:${process.getgid!()}`)
    .withBindMounts([
      ...run.dirs.map((dir) => ({ source: dir, target: dir })),
      ...(run.files ?? []).map((file) => ({ source: file, target: file, mode: 'ro' as const })),
    ])
    .withCommand(run.command)
    .withLogConsumer((stream) => stream.on('data', (chunk: Buffer | string) => log.append(chunk.toString())))
    .withWaitStrategy(Wait.forLogMessage(run.ready))
    .withStartupTimeout(run.timeoutMs)
    .start();
  const id = container.getId();
  running.add(id);
  await log.match(run.ready, `${spec.name}'s ready line`, run.timeoutMs); // our stream may trail the wait's
  return {
    container,
    log,
    stop: async () => {
      await container.stop({ timeout: 5_000, remove: true });
      running.delete(id);
    },
  };
}

export interface NatsService extends NatsServer {
  readonly backend: ServiceBackend;
}

/**
 * A JetStream nats-server on 127.0.0.1 with `options` (services/protocol/nats-server.ts): the
 * nats:2.10-alpine container where the engine is, else the binary. restart() keeps its port and store.
 */
export async function startNats(options: NatsServerOptions = {}): Promise<NatsService> {
  const r = await ready(NATS);
  if (r.kind === 'binary') return { ...(await startNatsServer({ ...options, binary: r.path })), backend: 'binary' };

  checkNatsServerOptions(options);
  const workDir = await mkdtemp(join(tmpdir(), 'advclip-nats-'));
  const storeDir = options.storeDir ?? join(workDir, 'jetstream');
  const configPath = join(workDir, 'nats-server.conf');
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  let port = options.port ?? -1;
  let current: ContainerRun | undefined;

  const start = async () => {
    await mkdir(storeDir, { recursive: true });
    await writeFile(configPath, natsServerConfig(port, storeDir, options), { mode: 0o600 });
    current = await runContainer(NATS, { command: ['-c', configPath], dirs: [workDir, storeDir], ready: /Server is ready/, timeoutMs });
    // -1 at the first start: the port it picked, kept by restarts
    if (port === -1) port = Number((await current.log.match(/Listening for client connections on [^\s]*:(\d+)/, 'NATS port', timeoutMs))[1]);
  };
  const stop = async () => {
    const run = current;
    current = undefined;
    await run?.stop();
  };

  try {
    await start();
  } catch (err) {
    await stop().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }
  return {
    backend: 'container',
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
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

export interface PrometheusOptions {
  /** prometheus.yml, as an object; the files it names are host paths. */
  readonly config: Record<string, unknown>;
  /** Host files the config names (rule files): read-only, at their own paths, in a container. */
  readonly files?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export interface PrometheusService {
  readonly backend: ServiceBackend;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Its log so far, for assertion messages. */
  log(): string;
  close(): Promise<void>;
}

/** Prometheus on 127.0.0.1 (a port it picks) with `config`: the prom/prometheus:v2.53.2 container where the engine is, else the binary. */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusService> {
  const r = await ready(PROM);
  const dir = await mkdtemp(join(tmpdir(), 'advclip-prometheus-'));
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  await writeFile(join(dir, 'prometheus.yml'), stringify(options.config));
  const args = [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0',
    '--log.level=info',
  ];
  const readyLine = /Server is ready to receive web requests/;
  let log: LogTail;
  let stop: () => Promise<void>;
  try {
    if (r.kind === 'container') {
      const run = await runContainer(PROM, { command: args, dirs: [dir], files: options.files, ready: readyLine, timeoutMs });
      log = run.log;
      stop = run.stop;
    } else {
      const child = spawn(r.path, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      log = new LogTail();
      child.stderr!.on('data', (chunk: Buffer) => log.append(chunk.toString()));
      stop = () => stopChild(child);
      const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`prometheus exited (${signal ?? code}):\n${log.text}`))));
      exited.catch(() => undefined);
      await Promise.race([log.match(readyLine, "Prometheus's ready line", timeoutMs), exited]).catch(async (err) => {
        await stop();
        throw err;
      });
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = (await log.match(/msg="Listening on" address=127\.0\.0\.1:(\d+)/, 'Prometheus port', timeoutMs))[1];
  return {
    backend: r.kind,
    url: `http://127.0.0.1:${port}`,
    log: () => log.text,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
