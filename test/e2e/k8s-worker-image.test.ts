/**
 * The Kubernetes worker's pod, on the Docker engine. From the worker
 * Deployment as `kubectl kustomize` renders it (so this follows the
 * manifests): its uid, gid and fsGroup, the container's read-only root,
 * dropped capabilities and emptyDirs, and the TLS Secret volume (defaultMode,
 * items). The Secret's files go into a host dir as kubelet writes them:
 * root-owned; with an fsGroup, group fsGroup and mode defaultMode|0440
 * (kubelet's SetVolumeOwnership adds group read on a read-only volume),
 * without one, root:root and mode defaultMode. The advclip image runs as
 * `--user uid:gid --group-add fsGroup --read-only`, on the host's network:
 * - with the fsGroup, the worker reads its key, registers over mTLS with a
 *   coordinator on loopback that admits only its certificate's identity,
 *   computes a short run and exits 0;
 * - without it (the negative control: what a pod with no fsGroup gets), it
 *   stops at once with EACCES on its TLS file.
 *
 * Needs a Docker engine, kubectl, root (to chown as kubelet does) and the
 * image advclip-cluster:cpu, built here when absent (docker-compose.yml's
 * tag: the compose test's build is reused). Under CI=true missing any of
 * them fails; elsewhere the test skips with one loud line.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import { createLogger } from '../../services/protocol/log.ts';
import { makeThrowawayCerts, workerIdentityUri, type ThrowawayCerts } from '../../services/protocol/tls.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { REPO } from '../helpers/cli.ts';
import { KUBECTL, requires, requiresBinary } from '../helpers/requires.ts';
import { find, render } from '../unit/deploy/k8s-render.ts';

const IMAGE = 'advclip-cluster:cpu';
const BASE_IMAGE = 'node:22-bookworm-slim';
const OVERLAY = 'cpu';
const MODEL = join(REPO, 'test/fixtures/tiny-clip-f32');
const DATA = join(REPO, 'data/shapes-colours');

function engineProblem(): string | undefined {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 });
  if (info.error) return `no docker CLI (${info.error.message})`;
  if (info.status !== 0) return `no Docker engine reachable (${info.stderr.trim().split('\n').pop()})`;
  return undefined;
}

const skip =
  requiresBinary(...KUBECTL) ||
  requires('Docker engine', engineProblem(), 'start dockerd (.ci/run does)') ||
  requires('root', process.getuid?.() === 0 ? undefined : 'not root', 'run as root: the Secret files are chowned root:fsGroup as kubelet does');

/** What the rendered worker Deployment says its pod runs as and mounts. */
interface WorkerPod {
  readonly uid: number;
  readonly gid: number;
  readonly fsGroup: number | undefined;
  readonly readOnlyRoot: boolean;
  readonly dropAll: boolean;
  readonly noNewPrivileges: boolean;
  /** emptyDir mount paths */
  readonly scratch: readonly string[];
  /** --tls-ca/--tls-cert/--tls-key as rendered */
  readonly tlsArgs: readonly string[];
  /** the TLS Secret's mount path and its files: path under the mount → mode kubelet gives it before fsGroup */
  readonly secret: { readonly mountPath: string; readonly files: ReadonlyMap<string, { readonly flag: string; readonly mode: number }> };
}

function renderedWorkerPod(): WorkerPod {
  const deployment = find(render(OVERLAY), 'Deployment', 'advclip-worker');
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c: { name: string }) => c.name === 'worker');
  assert.ok(container, 'the Deployment has a container named worker');
  const sc = { ...pod.securityContext, ...container.securityContext };
  assert.equal(typeof sc.runAsUser, 'number', 'runAsUser is set');
  const tlsArgs = (container.args as string[]).filter((a) => /^--tls-(ca|cert|key)=/.test(a));
  assert.equal(tlsArgs.length, 3, `the worker gets --tls-ca, --tls-cert and --tls-key: ${container.args.join(' ')}`);
  const paths = tlsArgs.map((a) => {
    const [flag, path] = a.split('=');
    return { flag: flag.slice('--tls-'.length), path };
  });
  const mounts = container.volumeMounts as Array<{ name: string; mountPath: string }>;
  const mount = mounts.find((m) => paths.every(({ path }) => path.startsWith(m.mountPath + '/')));
  assert.ok(mount, 'one volume mount holds the three TLS files');
  const volume = (pod.volumes as Array<{ name: string; secret?: { defaultMode?: number; items?: Array<{ key: string; path: string; mode?: number }> }; emptyDir?: object }>).find(
    (v) => v.name === mount.name,
  );
  assert.ok(volume?.secret, `the TLS volume ${mount.name} is a Secret`);
  const files = new Map<string, { flag: string; mode: number }>();
  for (const { flag, path } of paths) {
    const rel = posix.relative(mount.mountPath, path);
    const item = volume.secret.items?.find((i) => i.path === rel);
    assert.ok(!volume.secret.items || item, `${path}: the Secret's items do not project ${rel}`);
    files.set(rel, { flag, mode: item?.mode ?? volume.secret.defaultMode ?? 0o644 });
  }
  const emptyDirs = new Set(pod.volumes.filter((v: { emptyDir?: object }) => v.emptyDir).map((v: { name: string }) => v.name));
  return {
    uid: sc.runAsUser,
    gid: sc.runAsGroup ?? sc.runAsUser,
    fsGroup: pod.securityContext?.fsGroup,
    readOnlyRoot: sc.readOnlyRootFilesystem === true,
    dropAll: (sc.capabilities?.drop ?? []).includes('ALL'),
    noNewPrivileges: sc.allowPrivilegeEscalation === false,
    scratch: mounts.filter((m) => emptyDirs.has(m.name)).map((m) => m.mountPath),
    tlsArgs,
    secret: { mountPath: mount.mountPath, files },
  };
}

/** The Secret volume as kubelet fills it, in a fresh host dir: with fsGroup (root:fsGroup, mode|0440) or without (root:root, mode). */
function kubeletSecretDir(parent: string, name: string, pod: WorkerPod, certs: ThrowawayCerts, withFsGroup: boolean): string {
  const dir = join(parent, name);
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755); // the volume's dir is searchable; its files decide who reads
  const source: Record<string, string> = { ca: certs.caCertPath, cert: certs.client.certPath, key: certs.client.keyPath };
  for (const [rel, { flag, mode }] of pod.secret.files) {
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    copyFileSync(source[flag], path);
    chownSync(path, 0, withFsGroup ? pod.fsGroup! : 0);
    chmodSync(path, withFsGroup ? mode | 0o440 : mode);
  }
  return dir;
}

interface Exited {
  readonly code: number | null;
  readonly output: string;
}

let runs = 0;
const started = new Set<string>();

/** `docker run` of the worker image as the pod runs it; resolves when the container exits. */
function runWorkerContainer(pod: WorkerPod, secretDir: string, options: { coordinator: string; groupAdd: boolean }): { exited: Promise<Exited>; output: () => string } {
  const name = `advclip-test-k8s-worker-${process.pid}-${++runs}`;
  started.add(name);
  const args = [
    'run', '--rm', '--name', name, '--network', 'host',
    '--user', `${pod.uid}:${pod.gid}`,
    ...(options.groupAdd && pod.fsGroup !== undefined ? ['--group-add', String(pod.fsGroup)] : []),
    ...(pod.readOnlyRoot ? ['--read-only'] : []),
    ...(pod.dropAll ? ['--cap-drop', 'ALL'] : []),
    ...(pod.noNewPrivileges ? ['--security-opt', 'no-new-privileges'] : []),
    ...pod.scratch.flatMap((path) => ['--tmpfs', path]),
    '-v', `${secretDir}:${pod.secret.mountPath}:ro`,
    '-v', `${MODEL}:${MODEL}:ro`,
    '-v', `${DATA}:${DATA}:ro`,
    '-e', 'ADVCLIP_NATIVE_THREADS=1',
    IMAGE,
    'worker', `--coordinator=${options.coordinator}`, '--name=k8s-worker', '--metrics-port=0', `--model=${MODEL}`, `--data=${DATA}`,
    ...pod.tlsArgs,
  ];
  const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<Exited>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      started.delete(name);
      resolve({ code, output });
    });
  });
  return { exited, output: () => output };
}

process.once('exit', () => {
  if (started.size > 0) spawnSync('docker', ['rm', '-f', ...started], { stdio: 'ignore' });
});

function ensureImage(): string {
  if (spawnSync('docker', ['image', 'inspect', IMAGE]).status === 0) return `reused ${IMAGE}`;
  assert.equal(spawnSync('docker', ['image', 'inspect', BASE_IMAGE]).status, 0, `${BASE_IMAGE} missing; without a registry, build it first: deploy/docker/offline-base.sh`);
  const t0 = Date.now();
  const build = spawnSync('docker', ['build', '-q', '-f', 'deploy/docker/Dockerfile.cpu', '-t', IMAGE, '.'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, DOCKER_BUILDKIT: '0' }, // the legacy builder: no buildx plugin here
    maxBuffer: 64 << 20,
  });
  assert.equal(build.status, 0, `docker build of ${IMAGE}: ${build.stderr.slice(-4000)}`);
  return `built ${IMAGE} in ${((Date.now() - t0) / 1000).toFixed(0)} s`;
}

describe('the k8s worker pod on the Docker engine: uid, fsGroup and Secret modes as rendered', { skip, timeout: 30 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'advclip-k8s-worker-'));
  let pod: WorkerPod;
  let certs: ThrowawayCerts;

  before(async () => {
    pod = renderedWorkerPod();
    certs = await makeThrowawayCerts(join(dir, 'pki'));
    const image = ensureImage();
    process.stderr.write(`k8s-worker-image: ${image}; pod runs as ${pod.uid}:${pod.gid}, fsGroup ${pod.fsGroup}, ${pod.secret.mountPath} ${[...pod.secret.files].map(([f, { mode }]) => `${f} 0${mode.toString(8)}`).join(', ')}\n`);
  });

  after(() => {
    if (started.size > 0) spawnSync('docker', ['rm', '-f', ...started], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('without the fsGroup (root:root files at defaultMode, no supplementary group) the worker stops at once with EACCES on its TLS file', async (t) => {
    assert.notEqual(pod.uid, 0, 'the pod does not run as root');
    const secret = kubeletSecretDir(dir, 'secret-no-fsgroup', pod, certs, false);
    // nothing listens on port 1; the worker fails before it connects
    const { code, output } = await runWorkerContainer(pod, secret, { coordinator: '127.0.0.1:1', groupAdd: false }).exited;
    assert.notEqual(code, 0, output);
    assert.match(output, new RegExp(`TLS file ${pod.secret.mountPath}/\\S+ cannot be read: EACCES: permission denied`), output);
    t.diagnostic(output.split('\n').find((line) => line.includes('EACCES'))!);
  });

  it('with the fsGroup it reads its key, registers over mTLS with its certificate identity, trains and exits 0', async (t) => {
    assert.ok(pod.fsGroup !== undefined, 'the worker pod sets fsGroup');
    const secret = kubeletSecretDir(dir, 'secret-fsgroup', pod, certs, true);
    const allow = join(dir, 'allow-identities');
    writeFileSync(allow, `${workerIdentityUri('worker-1')}\n`);
    const logLines: string[] = [];
    const flags = coordinatorRunFrom(
      parseFlags(coordinatorCommand, [
        '--model', MODEL, '--data', DATA, '--shots', '2', '--iters', '3', '--batch-size', '8', '--chunk-size', '2',
        '--out', join(dir, 'out'), '--listen', '127.0.0.1:0', '--metrics-port', '0',
        '--tls-ca', certs.server.caPath, '--tls-cert', certs.server.certPath, '--tls-key', certs.server.keyPath,
        '--allow-identities', allow,
      ]),
    );
    let worker: ReturnType<typeof runWorkerContainer> | undefined;
    const summary = await serveTraining(flags, createLogger({ json: true, write: (line) => logLines.push(line) }), {
      onListening: async (coordinator) => {
        worker = runWorkerContainer(pod, secret, { coordinator: coordinator.address, groupAdd: true });
        const died = worker.exited.then((e) => assert.fail(`the worker container exited (${e.code}) before it registered:\n${e.output}`));
        const joined = (async () => {
          while (coordinator.registry.live().length < 1) await coordinator.registry.nextEvent();
        })();
        await Promise.race([joined, died]);
      },
    });
    const { code, output } = await worker!.exited;
    assert.equal(code, 0, `the worker leaves with 0 when the run is done:\n${output}`);
    assert.equal(summary.iters, 3);
    assert.ok(Number.isFinite(summary.final?.loss), 'the run finished with a loss');
    assert.ok(logLines.some((l) => /worker \S+ joined/.test(JSON.parse(l).msg)), 'the coordinator admitted it');
    assert.match(output, /"msg":"ready"|\bready\b/, 'the worker logged ready after loading its key');
    t.diagnostic(logLines.map((l) => JSON.parse(l).msg as string).find((m) => / joined/.test(m))!);
  });
});
