/**
 * Many workers on one machine: 64 replicas in one process end with the
 * adapter of `advclip train`, bit for bit; and with 64 workers spread over
 * `advclip worker --replicas` processes and this process, killing a
 * process and closing replicas mid-run while a new process joins leaves
 * the adapter unchanged too (a lost worker's chunks go to the others, and
 * chunk sums are added in chunk order whoever computed them).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { initBackend } from '../../services/core/backend.ts';
import type { Coordinator } from '../../services/coordinator/coordinator.ts';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import { createLogger } from '../../services/protocol/log.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { startReplicas, type WorkerReplicas } from '../../services/worker/replicas.ts';
import { BIN, REPO } from '../helpers/cli.ts';
import { adapterBytes, quiet, scratch, trainReference } from './cluster-harness.ts';

const tmp = scratch();
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  tmp.done();
});
let n = 0;
const out = () => `${tmp.dir}/run-${++n}`;

// 16 chunks of one sample per image round: work for many workers at once
const ARGS = ['--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--shots', '2', '--batch-size', '16', '--chunk-size', '1'];

async function replicasOf(coordinator: Coordinator, name: string, k: number): Promise<WorkerReplicas> {
  const backend = await initBackend();
  return startReplicas(
    {
      coordinator: coordinator.address,
      security: { mode: 'insecure' },
      name,
      capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
      prepare: workerSetupFrom({}, backend, quiet),
      metrics: { port: 0 },
      log: quiet,
    },
    k,
  );
}

/** `advclip worker --replicas K` as a user starts it; resolves once its replicas are ready. */
function workerProcess(coordinator: Coordinator, name: string, k: number): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, [BIN, 'worker', '--coordinator', coordinator.address, '--insecure', '--metrics-port', '0', '--name', name, '--replicas', String(k)], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let log = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      log += d;
      if (log.includes(`${k} replicas ready`)) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`${name} exited (${signal ?? code}) before its replicas were ready:\n${log}`)));
  });
  ready.catch(() => undefined);
  return { child, ready };
}

const coordinatorRun = (args: readonly string[], dir: string) =>
  coordinatorRunFrom(parseFlags(coordinatorCommand, [...args, '--out', dir, '--listen', '127.0.0.1:0', '--metrics-port', '0', '--insecure']));

test('64 replicas in one process end with the adapter of advclip train, bitwise', async () => {
  const args = [...ARGS, '--iters', '3'];
  const reference = await trainReference(args, out());
  const dir = out();
  let pool: WorkerReplicas | null = null;
  try {
    let registered = 0;
    await serveTraining(coordinatorRun(args, dir), quiet, {
      onListening: async (c) => {
        pool = await replicasOf(c, 'r', 64);
        while (c.registry.live().length < 64) await c.registry.nextEvent();
        registered = c.registry.live().length;
      },
    });
    const p = pool as WorkerReplicas | null;
    assert.ok(p);
    await p.done;
    assert.equal(registered, 64);
    assert.equal(new Set(p.workers.map((w) => w.id)).size, 64, 'each replica registered on its own');
    assert.ok(p.workers.filter((w) => w.tasksDone > 0).length >= 16, `${p.workers.filter((w) => w.tasksDone > 0).length} replicas got work`);
    assert.ok(adapterBytes(dir).equals(reference), 'adapter_model.safetensors differs from advclip train');
  } finally {
    await (pool as WorkerReplicas | null)?.close();
  }
});

test('64 workers with churn (a replica process killed, replicas closed, a new process joining) end with the adapter of advclip train, bitwise', async () => {
  const args = [...ARGS, '--iters', '6'];
  const reference = await trainReference(args, out());
  const dir = out();
  let local: WorkerReplicas | null = null;
  const churn = { killed: false, closed: 0, joined: false };
  const procs: { child: ChildProcess; ready: Promise<void> }[] = [];
  const lines: string[] = [];
  let lost = 0;
  try {
    await serveTraining(coordinatorRun(args, dir), createLogger({ json: true, write: (line) => void lines.push(line) }), {
      onListening: async (c) => {
        c.registry.onEvent((e) => void (e.kind === 'lost' && lost++));
        procs.push(workerProcess(c, 'p1', 16), workerProcess(c, 'p2', 16));
        local = await replicasOf(c, 'local', 32);
        await Promise.all(procs.map((p) => p.ready));
        while (c.registry.live().length < 64) await c.registry.nextEvent();
      },
      onStep: async (_report, state, c) => {
        if (state.step === 1) {
          // during step 2's rounds: the first process dies with its 16 replicas, 8 local replicas drop their streams
          setTimeout(() => {
            churn.killed = procs[0].child.kill('SIGKILL');
          }, 30);
          setTimeout(() => {
            const l = local as WorkerReplicas | null;
            void Promise.all(l!.workers.slice(0, 8).map((w) => w.close())).then(() => (churn.closed = 8));
          }, 60);
        }
        if (state.step === 3) {
          // a new process of 16 joins and gets work from the next round
          const late = workerProcess(c, 'p3', 16);
          await late.ready;
          churn.joined = true;
        }
      },
    });
    assert.deepEqual(churn, { killed: true, closed: 8, joined: true });
    assert.ok(lost >= 24, `${lost} workers lost`);
    assert.ok(lines.some((l) => /reassigning/.test(l)), 'no chunk of a lost worker was reassigned: the churn missed every round');
    assert.ok(adapterBytes(dir).equals(reference), 'adapter_model.safetensors differs from advclip train');
  } finally {
    await (local as WorkerReplicas | null)?.close();
  }
});
