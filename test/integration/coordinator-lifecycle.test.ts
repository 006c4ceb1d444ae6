/**
 * The coordinator's lifecycle around a run: it checks its own inputs before
 * it touches anything shared (NATS); a run resumed at its last step leaves
 * NATS and its outputs alone and ends with exit 0; a worker started before
 * its coordinator waits for it, and leaves cleanly when the run drains.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import { runSpecFrom } from '../../services/cli/train-flags.ts';
import { trainCommand } from '../../services/cli/train.ts';
import { initBackend } from '../../services/core/backend.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { trainLocally } from '../../services/run/steps.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { Worker } from '../../services/worker/worker.ts';
import { runCli } from '../helpers/cli.ts';
import { quiet, runCluster, scratch, TINY } from './cluster-harness.ts';

/** A port free a moment ago: only a candidate — whoever binds it next checks that it got it (a clash is retried). */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

test('the coordinator checks its TLS files and its output path before it connects to NATS', async () => {
  const tmp = scratch();
  // a listener standing in for NATS: the coordinator must not even connect to it
  let asked = 0;
  const natsStandIn = createServer((socket) => (asked++, socket.destroy()));
  await new Promise<void>((resolve) => natsStandIn.listen(0, '127.0.0.1', resolve));
  try {
    const nats = ['--nats', `nats://127.0.0.1:${(natsStandIn.address() as { port: number }).port}`];
    const badTls = await runCli(['coordinator', ...TINY, ...nats, '--tls-ca', join(tmp.dir, 'no-ca.pem'), '--tls-cert', join(tmp.dir, 'no.pem'), '--tls-key', join(tmp.dir, 'no.key'), '--out', join(tmp.dir, 'out'), '--metrics-port', '0']);
    assert.equal(badTls.code, 1, badTls.stderr);
    assert.match(badTls.stderr, /TLS file \S*no-ca\.pem cannot be read/);
    assert.doesNotMatch(badTls.stderr, /NATS|nats:/, 'nothing was asked of NATS');
    writeFileSync(join(tmp.dir, 'a-file'), '');
    const badOut = await runCli(['coordinator', ...TINY, ...nats, '--insecure', '--out', join(tmp.dir, 'a-file', 'adapter'), '--metrics-port', '0']);
    assert.equal(badOut.code, 1, badOut.stderr);
    assert.match(badOut.stderr, /--out \S*a-file\/adapter: \S*a-file is not a directory/);
    assert.doesNotMatch(badOut.stderr, /NATS|nats:/);
    assert.equal(asked, 0, 'no connection reached the NATS address');
  } finally {
    await new Promise((resolve) => natsStandIn.close(resolve));
    tmp.done();
  }
});

test('a run resumed at its last step starts no coordinator and leaves its outputs as they are', async () => {
  const tmp = scratch();
  try {
    const args = [...TINY, '--checkpoint-dir', join(tmp.dir, 'ckpt')];
    const out = join(tmp.dir, 'cluster');
    const first = await runCluster(args, out, { workers: 1 });
    const trainJson = readFileSync(join(out, 'train.json'));
    const mtime = statSync(join(out, 'adapter_model.safetensors')).mtimeMs;
    let listened = false;
    const again = await serveTraining(coordinatorRunFrom(parseFlags(coordinatorCommand, [...args, '--out', out, '--listen', '127.0.0.1:0', '--metrics-port', '0', '--insecure'])), quiet, {
      onListening: () => void (listened = true),
    });
    assert.equal(listened, false, 'no coordinator was started (NATS untouched)');
    assert.deepEqual(readFileSync(join(out, 'train.json')), trainJson, 'train.json is not rewritten');
    assert.equal(statSync(join(out, 'adapter_model.safetensors')).mtimeMs, mtime, 'the adapter is not rewritten');
    assert.deepEqual(again.final, first.summary.final);
    assert.equal(again.iters, 3);

    // advclip train alike; and to an empty --out it writes the checkpoint's adapter
    const trainArgs = [...TINY, '--checkpoint-dir', join(tmp.dir, 'ckpt-train')];
    const options = (o: string) => ({ run: runSpecFrom(parseFlags(trainCommand, [...trainArgs, '--out', o])), out: o, checkpoints: { dir: join(tmp.dir, 'ckpt-train'), every: 50, keep: 3 }, json: false });
    const trained = await trainLocally(options(join(tmp.dir, 'train')), quiet);
    const before = readFileSync(join(tmp.dir, 'train', 'train.json'));
    assert.deepEqual((await trainLocally(options(join(tmp.dir, 'train')), quiet)).final, trained.final);
    assert.deepEqual(readFileSync(join(tmp.dir, 'train', 'train.json')), before);
    await trainLocally(options(join(tmp.dir, 'elsewhere')), quiet);
    assert.deepEqual(readFileSync(join(tmp.dir, 'elsewhere', 'adapter_model.safetensors')), readFileSync(join(tmp.dir, 'train', 'adapter_model.safetensors')));
  } finally {
    tmp.done();
  }
});

test('a worker started before its coordinator waits for it, then leaves cleanly when the run drains', async () => {
  const tmp = scratch();
  const backend = await initBackend();
  try {
    // The worker must know the coordinator's port before anything listens there, so the port is a
    // candidate (freePort); if another process takes it first, the coordinator's bind fails and we retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const lines: string[] = [];
      const giveUp = new AbortController();
      let sawWaiting!: () => void;
      const waiting = new Promise<void>((resolve) => (sawWaiting = resolve));
      const early = Worker.start({
        coordinator: `127.0.0.1:${port}`,
        security: { mode: 'insecure' },
        name: 'early',
        capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
        prepare: workerSetupFrom({}, backend, quiet),
        metrics: { port: 0 },
        signal: giveUp.signal,
        log: {
          ...quiet,
          info: (m: string) => {
            lines.push(m);
            if (/waiting for the coordinator at 127\.0\.0\.1:\d+/.test(m)) sawWaiting();
          },
          child: () => quiet,
        },
      });
      try {
        const first = await Promise.race([waiting.then(() => 'waiting'), early.then(() => 'registered', () => 'failed')]);
        assert.equal(first, 'waiting', `the worker logs that it waits for the coordinator at port ${port}`);
        const flags = coordinatorRunFrom(parseFlags(coordinatorCommand, [...TINY, '--out', join(tmp.dir, 'out'), '--listen', `127.0.0.1:${port}`, '--metrics-port', '0', '--insecure']));
        try {
          await serveTraining(flags, quiet, {
            onListening: async (c) => {
              while (c.registry.live().length < 1) await c.registry.nextEvent();
            },
          });
        } catch (err) {
          if (attempt < 5 && /cannot listen on 127\.0\.0\.1:\d+/.test((err as Error).message)) {
            giveUp.abort(); // the port was taken meanwhile: this worker stops waiting, the next attempt takes another port
            continue;
          }
          throw err;
        }
        const worker = await early;
        await worker.done;
        assert.equal(worker.state, 'stopped');
        assert.ok(worker.tasksDone > 0, 'the early worker computed the run');
        assert.ok(lines.some((l) => /waiting for the coordinator at 127\.0\.0\.1:\d+/.test(l)), lines.join('\n'));
        return;
      } finally {
        await early.then((w) => w.close(), () => undefined);
      }
    }
  } finally {
    tmp.done();
  }
});
