/**
 * The commands as a user runs them: `advclip cluster` (worker processes,
 * its own nats-server, throwaway mTLS) ends with the adapter of `advclip
 * train`; `advclip coordinator` and `advclip worker` as separate processes,
 * with SIGTERM on the coordinator: the step finishes, outputs are written,
 * the worker is drained and exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BIN, REPO, runCli } from '../helpers/cli.ts';
import { TINY } from './cluster-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-cluster-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const adapter = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));

test('advclip cluster --workers 2 (mTLS, loopback nats-server) ends with the adapter of advclip train', async () => {
  const train = await runCli(['train', ...TINY, '--out', join(tmp, 'train'), '--json']);
  assert.equal(train.code, 0, train.stderr);
  const cluster = await runCli(['cluster', '--workers', '2', ...TINY, '--out', join(tmp, 'cluster'), '--metrics-port', '0', '--json']);
  assert.equal(cluster.code, 0, cluster.stderr);
  const summary = JSON.parse(cluster.stdout);
  assert.equal(summary.workers, 2);
  assert.equal(summary.iters, 3);
  assert.deepEqual(summary.final, JSON.parse(train.stdout).final);
  assert.ok(adapter(join(tmp, 'cluster')).equals(adapter(join(tmp, 'train'))), 'adapters differ');
  assert.equal(JSON.parse(readFileSync(join(tmp, 'cluster', 'train.json'), 'utf8')).workers, 2);
  assert.match(cluster.stderr, /nats-server on nats:\/\/127\.0\.0\.1:\d+/);
  assert.match(cluster.stderr, /"tls":"mtls"/);
  assert.equal(cluster.stderr.match(/"msg":"stopped"/g)?.length, 2, 'both workers stopped');
});

test('advclip coordinator + advclip worker processes; SIGTERM drains: outputs written; the worker, drained before the run ended, exits 1 to be restarted', async () => {
  const out = join(tmp, 'coordinator');
  const coordinator = spawn(process.execPath, [BIN, 'coordinator', ...TINY, '--iters', '200', '--out', out, '--listen', '127.0.0.1:0', '--metrics-port', '0', '--insecure', '--min-workers', '1', '--checkpoint-dir', join(tmp, 'ckpt'), '--json'], {
    cwd: REPO,
    env: { ...process.env, ADVCLIP_CLUSTER_TOKEN: 'secret' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let cerr = '';
  coordinator.stderr.on('data', (d) => (cerr += d));
  const coordinatorExit = new Promise<number | null>((resolve) => coordinator.on('exit', (code) => resolve(code)));
  let worker: ReturnType<typeof spawn> | null = null;
  try {
    // waits on the coordinator's log lines; its exit before one fails the wait (the test's timeout bounds a hang)
    const logged = (pattern: RegExp, times = 1) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = () => {
          const all = [...cerr.matchAll(new RegExp(pattern, 'g'))];
          const m = all[times - 1];
          if (m) {
            coordinator.stderr.off('data', check);
            resolve(m);
          }
        };
        coordinator.stderr.on('data', check);
        check();
        void coordinatorExit.then((code) => reject(new Error(`the coordinator exited (${code}) before ${pattern}:\n${cerr}`)));
      });
    const address = (await logged(/coordinator listening on (127\.0\.0\.1:\d+)/))[1];
    worker = spawn(process.execPath, [BIN, 'worker', '--coordinator', address, '--insecure', '--metrics-port', '0', '--name', 'solo', '--cluster-token', 'secret'], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let werr = '';
    worker.stderr!.on('data', (d) => (werr += d));
    const workerExit = new Promise<number | null>((resolve) => worker!.on('exit', (code) => resolve(code)));
    await logged(/"event":"step"/, 3);
    coordinator.kill('SIGTERM');
    assert.equal(await coordinatorExit, 0, cerr);
    // a supervisor (compose on-failure, a Deployment) restarts it to rejoin the resumed coordinator
    assert.equal(await workerExit, 1, werr);
    assert.match(cerr, /SIGTERM: finishing the step in progress/);
    assert.match(werr, /drained before the run ended \(the coordinator stops before the run ends; it resumes from its checkpoint\)/);
    const trainJson = JSON.parse(readFileSync(join(out, 'train.json'), 'utf8'));
    assert.ok(trainJson.iters >= 1 && trainJson.iters < 200, `stopped early, after ${trainJson.iters} steps`);
    assert.equal(trainJson.workers, 1);
    assert.ok(adapter(out).length > 0);
  } finally {
    coordinator.kill('SIGKILL');
    worker?.kill('SIGKILL');
  }
});

test('advclip coordinator --help names checkpoints and the advanced deadline flags; a worker without mTLS or --insecure refuses to start', async () => {
  const help = await runCli(['coordinator', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--checkpoint-dir DIR\s+write checkpoints here and resume from the newest valid one/);
  assert.match(help.stdout, /--task-deadline-ms MS\s+advanced: shortest task deadline/);
  assert.match(help.stdout, /--heartbeat-ms MS\s+advanced: heartbeat interval/);
  assert.match(help.stdout, /--metrics-host HOST/);
  const worker = await runCli(['worker', '--coordinator', '127.0.0.1:1', '--metrics-port', '0']);
  assert.equal(worker.code, 1);
  assert.match(worker.stderr, /gRPC needs mTLS: give --tls-ca, --tls-cert and --tls-key \(or --insecure for plaintext\)/);
});
