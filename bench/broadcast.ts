/**
 * Adapter broadcast: from the coordinator encoding a new adapter version to
 * every worker holding it (verified and decoded), p50/p99 over N versions of
 * ViT-B LoRA r = 2 on q,k,v of both towers (184,320 parameters), with a real
 * nats-server on loopback and the workers as separate processes reporting
 * over IPC. Goal (issue 8): p99 ≤ 20 ms.
 *
 * Alone, without writing bench/results.json (the suite runs it as `npm run bench -- --only broadcast`):
 *
 *   node --import tsx bench/broadcast.ts [--quick] [--json]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultLoraConfig, initLora, trainableParameterCount, type LoraWeights } from '../services/core/lora.ts';
import { archConfig } from '../services/core/presets.ts';
import { encodeAdapterBlob } from '../services/protocol/adapter-blob.ts';
import { AdapterPublisher } from '../services/protocol/adapter-store.ts';
import { connectNats, isNatsUnavailable } from '../services/protocol/nats-connection.ts';
import { startNatsServer } from '../services/protocol/nats-server.ts';
import { unavailable, type Figure } from './figure.ts';
import type { BenchContext, Section, SectionOutcome } from './section.ts';
import { mean, percentile } from './stats.ts';
import { renderTable } from './table.ts';

const ARCH = 'vit-b-32';
const SEED = 1;
const WORKERS = 2;
const CLUSTER = 'bench-broadcast';
const GOAL = { op: '<=', target: 20, on: 'value' } as const;

interface Worker {
  readonly proc: ChildProcess;
  /** newest version it holds */
  held: number;
}

/** Resolves when every worker holds `version` (or rejects after `ms`). */
function allHold(workers: readonly Worker[], version: number, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (workers.every((w) => w.held >= version)) {
        done();
        resolve();
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`version ${version} not held by every worker within ${ms} ms (held: ${workers.map((w) => w.held).join(', ')})`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      workers.forEach((w) => w.proc.off('message', check));
    };
    workers.forEach((w) => w.proc.on('message', check));
    check();
  });
}

function startWorker(ctx: BenchContext, url: string): Promise<Worker> {
  const proc = fork(join(ctx.repo, 'bench', 'broadcast-worker.ts'), ['--nats', url, '--cluster', CLUSTER, '--arch', ARCH, '--seed', String(SEED)], {
    cwd: ctx.repo,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const worker: Worker = { proc, held: 0 };
  proc.on('message', (m: { held?: number }) => {
    if (typeof m.held === 'number') worker.held = Math.max(worker.held, m.held);
  });
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('a broadcast worker did not start within 60 s'), 60_000);
    proc.on('message', (m: { ready?: boolean }) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve(worker);
      }
    });
    proc.once('exit', (code) => fail(`a broadcast worker exited (${code}) before it was ready`));
  });
}

/** The adapters after some steps: B no longer zero, a different blob each version. */
function adaptersAt(base: LoraWeights, version: number): LoraWeights {
  return { ...base, b: base.b.map((t, i) => ({ shape: t.shape, data: t.data.map((_, j) => Math.sin(version + i + j) * 1e-3) })) };
}

async function run(ctx: BenchContext): Promise<SectionOutcome> {
  const warmUp = ctx.quick ? 3 : 5;
  const versions = ctx.quick ? 30 : 200;
  const label = `publish → ${WORKERS} workers hold the version`;
  let server;
  try {
    server = await startNatsServer();
  } catch (err) {
    return { figures: [unavailable('broadcast.p99', `${label}, p99`, 'ms', (err as Error).message, GOAL)], details: {} };
  }
  const workers: Worker[] = [];
  const link = await connectNats({ servers: server.url, cluster: CLUSTER, name: 'bench-broadcast-coordinator' });
  try {
    if (isNatsUnavailable(link)) throw link.error;
    const publisher = await AdapterPublisher.open(link, { keep: 4 });
    for (let i = 0; i < WORKERS; i++) workers.push(await startWorker(ctx, server.url));
    const base = initLora(archConfig(ARCH), defaultLoraConfig, SEED);
    const params = trainableParameterCount(base.sites, base.config.rank);
    const total: number[] = [];
    const publishOnly: number[] = [];
    const carried = new Set<string>();
    let bytes = 0;
    for (let v = 1; v <= warmUp + versions; v++) {
      // the new version's factors are ready before the clock starts, as they are after a step; one
      // version at a time, as a coordinator holds them (all 200 at once put 150 MB of typed arrays
      // in the measured process, and its full GCs into the figures)
      const update = adaptersAt(base, v);
      const held = allHold(workers, v, 10_000);
      const t0 = performance.now();
      const blob = encodeAdapterBlob(update, v);
      carried.add((await publisher.publish(v, blob.bytes, blob.sha256)).carried);
      const t1 = performance.now();
      await held;
      if (v > warmUp) {
        total.push(performance.now() - t0);
        publishOnly.push(t1 - t0);
      }
      bytes = blob.bytes.length;
    }
    await publisher.close();
    const note = `${versions} versions after ${warmUp} warm-up, ${params.toLocaleString('en')} parameters (${bytes.toLocaleString('en')} bytes safetensors, ${[...carried].join(' + ')} in adapter.latest), nats-server on loopback, ${WORKERS} worker processes (AdapterHolder: SHA-256 verified, decoded)`;
    const figures: Figure[] = [
      { id: 'broadcast.p50', label: `${label}, p50`, value: percentile(total, 50), unit: 'ms', note },
      { id: 'broadcast.p99', label: `${label}, p99`, value: percentile(total, 99), unit: 'ms', goal: GOAL },
      { id: 'broadcast.max', label: `${label}, max`, value: Math.max(...total), unit: 'ms' },
      { id: 'broadcast.publish_p50', label: 'of which encode + publish (KV put acknowledged), p50', value: percentile(publishOnly, 50), unit: 'ms' },
    ];
    return { figures, details: { versions, warm_up: warmUp, workers: WORKERS, parameters: params, blob_bytes: bytes, carried: [...carried], mean_ms: mean(total), latencies_ms: total.map((x) => Number(x.toFixed(2))), publish_ms: publishOnly.map((x) => Number(x.toFixed(2))) } };
  } finally {
    for (const w of workers) {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) continue;
      const exited = new Promise((r) => w.proc.once('exit', r));
      if (w.proc.connected) w.proc.send('stop');
      const timer = setTimeout(() => w.proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (!isNatsUnavailable(link)) await link.close();
    await server.close();
  }
}

export const broadcastSection: Section = { name: 'broadcast', title: 'Adapter broadcast over NATS (loopback nats-server, worker processes)', run };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) {
    process.stdout.write('node --import tsx bench/broadcast.ts [--quick] [--json]\n  --quick: 30 versions instead of 200\n  --json:  figures and raw latencies as one JSON object\n');
    process.exit(0);
  }
  const load = loadavg()[0];
  const ctx: BenchContext = { quick: values.quick!, repo: join(dirname(fileURLToPath(import.meta.url)), '..'), log: (m) => process.stderr.write(`${m}\n`), shared: {} };
  const outcome = await broadcastSection.run(ctx);
  const loads = { load_before: load, load_after: loadavg()[0] };
  if (values.json) process.stdout.write(`${JSON.stringify({ ...loads, figures: outcome.figures, details: outcome.details })}\n`);
  else process.stdout.write(`${renderTable([{ title: broadcastSection.title, figures: outcome.figures }])}\nload ${loads.load_before.toFixed(1)} → ${loads.load_after.toFixed(1)}\n`);
}
