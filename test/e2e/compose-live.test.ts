/**
 * The compose project, live on a Docker engine, driven by testcontainers'
 * DockerComposeEnvironment: `up --build --scale worker=3` with no .env (only
 * overrides for a short run, a temp results folder and free host ports);
 * each worker registers with its own certificate (3 distinct identities,
 * named after the containers); NATS speaks TLS only (the coordinator uses
 * tls://, a plain-text client is refused);
 * Prometheus in the project scrapes the coordinator and the 3 workers; one
 * worker is `docker kill`ed mid-run, later `compose restart coordinator`
 * resumes from its checkpoint and the workers rejoin as who they were; the run finishes, the coordinator exits
 * 0 and is not restarted, and its adapter in the results folder is bitwise
 * the one `advclip train` writes with the same flags in the same image, and
 * README's `adapter pull` reads it back from NATS over TLS; every
 * dashboard query returns data for the run (the accuracy panel, which has
 * none yet, says why); `down -v` leaves no container, network or volume.
 *
 * Needs a Docker engine and the base images (deploy/docker/offline-base.sh
 * where no registry is reachable). Without an engine it skips with one loud
 * line; under CI=true it fails instead.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { DockerComposeEnvironment, type StartedDockerComposeEnvironment } from 'testcontainers';
import { REPO } from '../helpers/cli.ts';
import { parseSafetensors } from '../../services/io/safetensors.ts';

// The project publishes its host ports on loopback only. Inside a container (a /.dockerenv, as on our
// machines) testcontainers would check them at the bridge gateway instead, where nothing listens.
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';

const exec = promisify(execFile);
const IMAGE = 'advclip-cluster:cpu';
const BASE_IMAGES = ['node:22-bookworm-slim', 'nats:2.10-alpine', 'prom/prometheus:v2.53.2'];
const WORKERS = 3;
const ITERS = 24;
const KILL_AT_STEP = 8;
/** after the checkpoint of step 12: the restarted coordinator resumes there */
const RESTART_AT_STEP = 14;
const RUN = 'e2e';
/** The run's flags: the coordinator reads them as its --config, `advclip train` as its own. */
const RUN_YAML = `method: advclip-lora
perturbation: universal
epsilon: 0.0156862745
tau: 2
shots: 16
lora-rank: 2
lr: 0.01
iters: ${ITERS}
batch-size: 32
seed: 1
checkpoint-every: 4
`;

function engineProblem(): string | undefined {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 });
  if (info.error) return `no docker CLI (${info.error.message})`;
  if (info.status !== 0) return `no Docker engine reachable (${info.stderr.trim().split('\n').pop()})`;
  return undefined;
}

function skipReason(): string | false {
  const problem = engineProblem();
  if (problem === undefined) return false;
  if (process.env.CI === 'true') return false; // the test runs and fails on the engine check below
  process.stderr.write(`\n!!!! compose-live SKIPPED: ${problem}; start dockerd to run the live compose test (CI=true makes this a failure) !!!!\n\n`);
  return problem;
}

/** `docker compose` (v2) where the plugin is there, else Debian's `docker-compose` (v1). */
function composeExecutable(): { standalone: true; executablePath: string } | undefined {
  const v2 = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  return v2.status === 0 ? undefined : { standalone: true, executablePath: 'docker-compose' };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(2_000);
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

const docker = async (...args: string[]) => (await exec('docker', args, { maxBuffer: 64 << 20 })).stdout.trim();

describe('docker compose up, live (testcontainers)', { skip: skipReason(), timeout: 30 * 60_000 }, () => {
  const project = `advclip-e2e-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'advclip-compose-'));
  const results = join(dir, 'results');
  const config = join(dir, 'run.yaml');
  let prometheusUrl = '';
  let environment: StartedDockerComposeEnvironment | undefined;
  let downed = false;
  let runWindow = { start: 0, end: 0 };

  const containers = async (filters: string[] = []) =>
    (await docker('ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.ID}} {{.Label "com.docker.compose.service"}}'))
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [id, service] = line.split(' ');
        return { id, service };
      });
  let composeEnv: Record<string, string> = {};
  /** The project's compose CLI, as testcontainers runs it. */
  const compose = async (...args: string[]) => {
    const standalone = composeExecutable();
    const [file, pre] = standalone ? [standalone.executablePath, []] : ['docker', ['compose']];
    return exec(file, [...pre, '-p', project, '-f', join(REPO, 'docker-compose.yml'), ...args], { cwd: REPO, env: { ...process.env, ...composeEnv }, maxBuffer: 64 << 20 });
  };
  /** Each project container's state and health checks, for a failed `up`. */
  const projectHealth = async () => {
    const lines: string[] = [];
    for (const { id } of await containers()) {
      lines.push(await docker('inspect', '--format', '{{.Name}} {{.State.Status}} exit={{.State.ExitCode}} health={{json .State.Health}}', id).catch((e: unknown) => `${id}: ${String(e)}`));
    }
    return lines.join('\n');
  };
  const firstLine = (err: unknown) => String(err instanceof Error ? err.message : err).split('\n').find((l) => /ERROR|unhealthy|error/i.test(l)) ?? String(err).split('\n')[0];
  const coordinatorId = async () => (await containers()).find((c) => c.service === 'coordinator')!.id;

  async function promQuery(path: string, params: Record<string, string>): Promise<Array<{ metric: Record<string, string>; value?: [number, string]; values?: Array<[number, string]> }>> {
    const res = await fetch(`${prometheusUrl}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: [] } };
    if (body.status !== 'success') throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.error}`);
    return body.data.result;
  }

  before(async () => {
    const problem = engineProblem();
    assert.equal(problem, undefined, `CI=true: the live compose test must run, but: ${problem}`);
    const missing = BASE_IMAGES.filter((image) => spawnSync('docker', ['image', 'inspect', image]).status !== 0);
    assert.deepEqual(missing, [], `base images missing; without a registry, build them first: deploy/docker/offline-base.sh`);
    writeFileSync(config, RUN_YAML);
    const ports = { PROMETHEUS_PORT: await freePort(), NATS_MONITOR_PORT: await freePort() };
    prometheusUrl = `http://127.0.0.1:${ports.PROMETHEUS_PORT}`;
    const started = Date.now();
    composeEnv = {
      ADVCLIP_CONFIG: config,
      ADVCLIP_RESULTS: results,
      ADVCLIP_RUN: RUN,
      PROMETHEUS_PORT: String(ports.PROMETHEUS_PORT),
      NATS_MONITOR_PORT: String(ports.NATS_MONITOR_PORT),
    };
    const up = () =>
      new DockerComposeEnvironment(REPO, 'docker-compose.yml')
        .withProjectName(project)
        .withBuild()
        .withAutoCleanup(false) // no Ryuk: its image comes from a registry; `after` takes the project down
        .withEnvironment(composeEnv)
        .withClientOptions({ executable: composeExecutable(), commandOptions: ['--scale', `worker=${WORKERS}`] })
        .withStartupTimeout(10 * 60_000)
        .up();
    try {
      environment = await up();
    } catch (err) {
      // Seen twice of six runs here, each the first compose run on a freshly started
      // engine: docker-compose 1.29 stopped `up` ~15 s in with "Container … is unhealthy"
      // for a dependency whose healthcheck cannot have failed 10 times yet. The
      // project's containers' health is printed, the project taken down, and `up`
      // tried once more; a second failure fails the test with both reports.
      const health = await projectHealth();
      process.stderr.write(`compose-live: the first \`up\` failed (${firstLine(err)}); container health:\n${health}\n`);
      await compose('down', '-v', '--remove-orphans').catch(() => undefined);
      try {
        environment = await up();
      } catch (again) {
        const healthAgain = await projectHealth();
        await compose('down', '-v', '--remove-orphans').catch(() => undefined);
        throw new Error(`compose up failed twice. First: ${firstLine(err)}\n${health}\nSecond: ${String(again)}\n${healthAgain}`);
      }
    }
    process.stderr.write(`compose-live: project ${project} up (build included) in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    runWindow.start = Date.now() / 1000;
  });

  after(async () => {
    if (environment && !downed) await environment.down({ removeVolumes: true, timeout: 10_000 }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it(`Prometheus in the project scrapes the coordinator and all ${WORKERS} workers`, async () => {
    const up = await until('every target up', 120_000, async () => {
      const series = await promQuery('query', { query: 'up{job=~"advclip-coordinator|advclip-worker"} == 1' });
      const byJob = (job: string) => series.filter((s) => s.metric.job === job).length;
      return byJob('advclip-coordinator') === 1 && byJob('advclip-worker') === WORKERS ? series : undefined;
    });
    assert.equal(up.length, WORKERS + 1);
    const joined = await until('3 workers joined', 120_000, async () => {
      const [w] = await promQuery('query', { query: 'advclip_workers' });
      return w && Number(w.value![1]) === WORKERS ? w : undefined;
    });
    assert.equal(Number(joined.value![1]), WORKERS);
  });

  const workerIdentities = new Set<string>();

  it(`the ${WORKERS} workers register with ${WORKERS} identities of their own, from the signer, named after their containers`, async () => {
    const workers = (await containers()).filter((c) => c.service === 'worker');
    const names = await Promise.all(workers.map(async (w) => (await docker('inspect', '--format', '{{.Name}}', w.id)).replace(/^\//, '')));
    const identities = await until(`${WORKERS} identities in the coordinator's log`, 120_000, async () => {
      const { stdout, stderr } = await exec('docker', ['logs', await coordinatorId()], { maxBuffer: 64 << 20 });
      const seen = new Set([...(stdout + stderr).matchAll(/worker \S+ joined.*?identity\W+(spiffe:\/\/advclip\/worker\/[A-Za-z0-9_-]+)/g)].map((m) => m[1]));
      return seen.size >= WORKERS ? seen : undefined;
    });
    assert.deepEqual([...identities].sort(), names.map((n) => `spiffe://advclip/worker/${n}`).sort());
    for (const id of identities) workerIdentities.add(id);
  });

  it('NATS speaks TLS only: the coordinator connects with tls:// and a plain-text client is refused', async () => {
    const { stdout, stderr } = await exec('docker', ['logs', await coordinatorId()], { maxBuffer: 64 << 20 });
    assert.match(stdout + stderr, /NATS at tls:\/\/nats:4222: adapter versions published to JetStream/);
    const [network] = (await docker('network', 'ls', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Name}}')).split('\n');
    // a raw client on the project's network: NATS announces TLS, and on a CONNECT sent in plain text it hangs up
    const probe = `const s=require('net').connect(4222,'nats');let b='';s.on('data',d=>{b+=d;if(/^INFO /.test(b)&&!s.sent){s.sent=1;s.write('CONNECT {"user":"advclip-worker","pass":"not-the-password"}\\r\\nPING\\r\\n')}});s.on('close',()=>{console.log(b+'\\nCLOSED');process.exit(0)});setTimeout(()=>{console.log(b+'\\nOPEN');process.exit(0)},10000)`;
    const answer = await docker('run', '--rm', '--no-healthcheck', '--network', network, '--entrypoint', 'node', IMAGE, '-e', probe);
    assert.match(answer, /^INFO .*"tls_required":true/m, answer);
    assert.doesNotMatch(answer, /^(PONG|\+OK)/m, `a plain-text session: ${answer}`);
    assert.match(answer, /^CLOSED$/m, `the server hung up: ${answer}`);
    for (const w of (await containers()).filter((c) => c.service === 'worker')) {
      const logs = await exec('docker', ['logs', w.id], { maxBuffer: 64 << 20 });
      assert.doesNotMatch(logs.stdout + logs.stderr, /adapter versions come over gRPC/, 'the workers read adapter versions from NATS, over TLS');
    }
  });

  it('a worker killed and the coordinator restarted mid-run change nothing: the run finishes, exits 0, and its adapter is bitwise `advclip train`’s', async () => {
    const reached = (step: number) =>
      until(`step ${step}`, 10 * 60_000, async () => {
        const [s] = await promQuery('query', { query: 'advclip_step' });
        return s && Number(s.value![1]) >= step ? s : undefined;
      });
    await reached(KILL_AT_STEP);
    const victim = (await containers(['status=running'])).find((c) => c.service === 'worker')!;
    await docker('kill', victim.id);

    await reached(RESTART_AT_STEP);
    await compose('restart', 'coordinator');
    const coordinator = await coordinatorId();
    const state = await until('the coordinator to exit', 15 * 60_000, async () => {
      const s = JSON.parse(await docker('inspect', '--format', '{{json .State}}', coordinator)) as { Status: string; ExitCode: number };
      return s.Status === 'exited' ? s : undefined;
    });
    runWindow.end = Date.now() / 1000;
    const { stdout, stderr } = await exec('docker', ['logs', coordinator], { maxBuffer: 64 << 20 });
    const logs = stdout + stderr;
    assert.equal(state.ExitCode, 0, logs.slice(-4000));
    await sleep(5_000);
    const final = JSON.parse(await docker('inspect', '--format', '{{json .}}', coordinator)) as { RestartCount: number; State: { Status: string } };
    assert.deepEqual([final.State.Status, final.RestartCount], ['exited', 0], 'a finished run is not restarted');
    assert.match(logs, new RegExp(`wrote /results/${RUN}`));
    assert.match(logs, /resuming from \/checkpoints\/checkpoint-\d+\.safetensors at step \d+/, 'the restarted coordinator resumed from its checkpoint');
    const secondLife = logs.slice(logs.search(/resuming from/));
    assert.match(secondLife, /worker \S+ joined/, 'workers rejoined the restarted coordinator');
    const rejoined = new Set([...secondLife.matchAll(/worker \S+ joined.*?identity\W+(spiffe:\/\/advclip\/worker\/[A-Za-z0-9_-]+)/g)].map((m) => m[1]));
    assert.ok(rejoined.size > 0 && [...rejoined].every((id) => workerIdentities.has(id)), `workers rejoin as who they were (restarted ones with a new key): ${[...rejoined]}`);
    // (its history holds the steps of the coordinator's last life only: services' output writer, not the deploy)
    const summary = JSON.parse(readFileSync(join(results, RUN, 'train.json'), 'utf8')) as { iters?: number; final?: { loss: number }; history?: Array<{ step: number }> };
    assert.equal(summary.iters, ITERS);
    assert.ok(Number.isFinite(summary.final?.loss), 'train.json has the final loss');
    assert.equal(summary.history?.at(-1)?.step, ITERS - 1, 'train.json ends at the last step');
    const workersLeft = await until('the workers to leave', 120_000, async () => {
      const running = (await containers(['status=running'])).filter((c) => c.service === 'worker');
      return running.length === 0 ? true : undefined;
    });
    assert.ok(workersLeft);

    // The same flags, in one process, in the same image (the same backend and kernels).
    const reference = join(dir, 'reference');
    await exec('docker', [
      'run', '--rm', '--no-healthcheck', '--user', '0:0', '-e', 'ADVCLIP_NATIVE_THREADS=1', '-v', `${dir}:/e2e`, IMAGE,
      'train', '--config', '/e2e/run.yaml', '--model', '/models/clip-small', '--data', '/data/shapes-colours', '--out', '/e2e/reference',
    ], { maxBuffer: 64 << 20 });
    const cluster = readFileSync(join(results, RUN, 'adapter_model.safetensors'));
    const single = readFileSync(join(reference, 'adapter_model.safetensors'));
    assert.ok(cluster.equals(single), `the cluster's adapter (${cluster.length} B) differs from advclip train's (${single.length} B)`);
    assert.deepEqual(JSON.parse(readFileSync(join(results, RUN, 'adapter_config.json'), 'utf8')), JSON.parse(readFileSync(join(reference, 'adapter_config.json'), 'utf8')));
  });

  it("README's `adapter pull` over TLS reads the run's adapter back from NATS, bitwise the one in the results", async () => {
    assert.ok(runWindow.end > runWindow.start, 'the run finished');
    const pulled = join(dir, 'pulled');
    mkdirSync(pulled, { mode: 0o777 });
    chmodSync(pulled, 0o777); // the worker image runs as ADVCLIP_UID (1000), whoever runs this test
    await compose('run', '--rm', '--no-deps', '--entrypoint', 'node /app/bin/advclip.mjs', '-v', `${pulled}:/out`, 'worker',
      'adapter', 'pull', '--nats', 'tls://nats:4222', '--nats-ca', '/run/secrets/advclip/ca.crt', '--out', '/out/run1');
    // the same tensors, bitwise; the metadata differ (a NATS version also carries its number and LoRA config)
    const tensors = (path: string) => {
      const file = parseSafetensors(readFileSync(path), path);
      return Object.fromEntries([...file.tensors].map(([name, t]) => [name, { shape: [...t.shape], bytes: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') }]));
    };
    const fromNats = tensors(join(pulled, 'run1', 'adapter_model.safetensors'));
    assert.ok(Object.keys(fromNats).length > 0);
    assert.deepEqual(fromNats, tensors(join(results, RUN, 'adapter_model.safetensors')));
  });

  it('every dashboard query returns data for the run; the accuracy panel, empty, says why', async () => {
    assert.ok(runWindow.end > runWindow.start, 'the run finished');
    const dashboard = JSON.parse(readFileSync(join(REPO, 'deploy/grafana/dashboards/advclip.json'), 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }>; fieldConfig: { defaults: { noValue?: string } } }>;
    };
    const empty: string[] = [];
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const query = expr.replaceAll('$__rate_interval', '30s').replaceAll('$run', RUN);
        const series = await promQuery('query_range', { query, start: String(runWindow.start - 60), end: String(runWindow.end + 10), step: '5' });
        const points = series.reduce((n, s) => n + (s.values?.length ?? 0), 0);
        if (panel.title.startsWith('Accuracy')) {
          assert.equal(points, 0, 'no evaluation runs during training');
          assert.ok(panel.fieldConfig.defaults.noValue, 'the empty accuracy panel says why');
        } else if (points === 0) {
          empty.push(`${panel.title}: ${query}`);
        }
      }
    }
    assert.deepEqual(empty, [], 'dashboard queries without data');
  });

  it('`down -v` leaves no container, network or volume', async () => {
    assert.ok(environment);
    await environment.down({ removeVolumes: true, timeout: 10_000 });
    downed = true;
    const label = `label=com.docker.compose.project=${project}`;
    assert.equal(await docker('ps', '-aq', '--filter', label), '');
    assert.equal(await docker('network', 'ls', '-q', '--filter', label), '');
    assert.equal(await docker('volume', 'ls', '-q', '--filter', label), '');
  });
});
