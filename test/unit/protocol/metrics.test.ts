import assert from 'node:assert/strict';
import { createConnection, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Gauge } from 'prom-client';
import {
  Attacks,
  CoordinatorMetricNames,
  GradParams,
  LossKinds,
  StepPhases,
  WorkerMetricNames,
  createCoordinatorMetrics,
  createMetricsRegistry,
  createWorkerMetrics,
  type CoordinatorMetrics,
} from '../../../services/protocol/metrics.ts';
import { startHttpEndpoints, type HttpEndpoints, type LifecycleState } from '../../../services/protocol/http-endpoints.ts';
import { parseExposition, type MetricFamily } from '../../../services/protocol/exposition.ts';

async function scrape(endpoints: HttpEndpoints): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`http://127.0.0.1:${endpoints.port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe('coordinator metrics served on /metrics', () => {
  let endpoints: HttpEndpoints;
  let m: CoordinatorMetrics;

  before(async () => {
    const registry = createMetricsRegistry();
    m = createCoordinatorMetrics(registry);
    endpoints = await startHttpEndpoints({ port: 0, registry, readiness: () => ({ ready: true, state: 'ready' }) });
  });
  after(() => endpoints.close());

  it('binds to loopback on a free port by default', () => {
    assert.equal(endpoints.host, '127.0.0.1');
    assert.ok(endpoints.port > 0);
  });

  it('exports every coordinator metric with its type, labels and values', async () => {
    for (const kind of LossKinds) m.loss.set({ kind }, kind === 'clean' ? 0.5 : 1.25);
    for (const param of GradParams) m.gradNorm.set({ param }, 2);
    for (const attack of Attacks) m.accuracy.set({ attack }, 0.75);
    for (const phase of StepPhases) m.stepSeconds.observe({ phase }, 0.02);
    m.deltaLinf.set(0.03);
    m.epsilon.set(4 / 255);
    m.workers.set(3);
    m.adapterVersion.set(7);
    m.workerSamples.inc({ worker: 'w-1' }, 32);
    m.step.set(12);
    m.waitingForWorkers.set(0);
    m.rejectedResults.inc({ reason: 'non_finite' });
    m.networkBytes.inc({ direction: 'sent', message: 'task' }, 600);
    m.networkBytes.inc({ direction: 'received', message: 'result' }, 900);
    m.iters.set(100);
    m.learningRate.set(0.01);
    m.etaSeconds.set(30);
    m.lossTotal.inc({ kind: 'adv' }, 1.25);
    m.lossTotal.inc({ kind: 'adv' }, 0.75);
    m.steps.inc(2);
    m.runInfo.set({ run: 'quick', method: 'advclip-lora', perturbation: 'universal', sync: 'exact' }, 1);

    const families = await scrape(endpoints);
    const type = (name: string) => families.get(name)?.type;
    const n = CoordinatorMetricNames;
    for (const name of [n.loss, n.gradNorm, n.deltaLinf, n.epsilon, n.workers, n.adapterVersion, n.accuracy, n.step, n.waitingForWorkers]) {
      assert.equal(type(name), 'gauge', name);
    }
    assert.equal(type(n.stepSeconds), 'histogram');
    assert.equal(type(n.workerSamples), 'counter');
    assert.equal(type(n.rejectedResults), 'counter');
    assert.equal(type(n.networkBytes), 'counter');
    for (const name of [n.iters, n.learningRate, n.etaSeconds, n.runInfo]) assert.equal(type(name), 'gauge', name);
    assert.equal(type(n.lossTotal), 'counter');
    assert.equal(type(n.steps), 'counter');

    const values = (name: string, label: string) =>
      Object.fromEntries(families.get(name)!.samples.map((s) => [s.labels[label], s.value]));
    assert.deepEqual(values(n.loss, 'kind'), { clean: 0.5, adv: 1.25 });
    assert.deepEqual(Object.keys(values(n.gradNorm, 'param')).sort(), ['A', 'B', 'delta']);
    assert.deepEqual(Object.keys(values(n.accuracy, 'attack')).sort(), ['fgsm', 'none', 'pgd']);
    assert.deepEqual(values(n.workerSamples, 'worker'), { 'w-1': 32 });
    assert.deepEqual(values(n.rejectedResults, 'reason'), { non_finite: 1 });
    assert.deepEqual(values(n.networkBytes, 'direction'), { sent: 600, received: 900 });
    assert.deepEqual(values(n.lossTotal, 'kind'), { adv: 2 }, 'sums of per-step losses: rate(sum) / rate(steps) is the mean per step');
    assert.equal(families.get(n.steps)!.samples[0].value, 2);
    assert.deepEqual(families.get(n.runInfo)!.samples[0].labels, { run: 'quick', method: 'advclip-lora', perturbation: 'universal', sync: 'exact' });
    assert.equal(families.get(n.workers)!.samples[0].value, 3);

    const step = families.get(n.stepSeconds)!;
    const series = new Set(step.samples.map((s) => s.name));
    assert.deepEqual([...series].sort(), ['advclip_step_seconds_bucket', 'advclip_step_seconds_count', 'advclip_step_seconds_sum']);
    const counts = step.samples.filter((s) => s.name.endsWith('_count'));
    assert.deepEqual(counts.map((s) => s.labels.phase).sort(), [...StepPhases].sort());
    const inf = step.samples.find((s) => s.name.endsWith('_bucket') && s.labels.phase === 'compute' && s.labels.le === '+Inf');
    assert.equal(inf?.value, 1);
  });

  it('serves NaN losses as NaN, which the loss-NaN alert relies on', async () => {
    m.loss.set({ kind: 'adv' }, NaN);
    const adv = (await scrape(endpoints)).get(CoordinatorMetricNames.loss)!.samples.find((s) => s.labels.kind === 'adv');
    assert.ok(Number.isNaN(adv?.value));
  });

  it('exports the Node process metrics under the advclip_ prefix', async () => {
    const names = [...(await scrape(endpoints)).keys()];
    assert.ok(names.includes('advclip_process_cpu_seconds_total'), names.join(' '));
    assert.ok(names.includes('advclip_nodejs_heap_size_used_bytes'));
    assert.ok(names.every((name) => name.startsWith('advclip_')), 'every family is advclip_*');
  });
});

describe('worker metrics', () => {
  it('exports compute time, samples, errors and adapter version', async () => {
    const registry = createMetricsRegistry();
    const w = createWorkerMetrics(registry);
    w.computeSeconds.observe(0.2);
    w.samplesProcessed.inc(16);
    w.errors.inc({ kind: 'unverified_adapter' });
    w.adapterVersion.set(4);
    const families = parseExposition(await registry.metrics());
    const n = WorkerMetricNames;
    assert.equal(families.get(n.computeSeconds)?.type, 'histogram');
    assert.equal(families.get(n.samplesProcessed)?.samples[0].value, 16);
    assert.deepEqual(families.get(n.errors)?.samples[0].labels, { kind: 'unverified_adapter' });
    assert.equal(families.get(n.adapterVersion)?.samples[0].value, 4);
  });

  it('keeps registries apart: a coordinator and a worker in one process do not collide', () => {
    const a = createMetricsRegistry();
    const b = createMetricsRegistry();
    createCoordinatorMetrics(a);
    createCoordinatorMetrics(b);
    createWorkerMetrics(a);
    assert.throws(() => createWorkerMetrics(a), /already been registered/);
  });
});

describe('health and readiness endpoints', () => {
  let state: LifecycleState = 'starting';
  let endpoints: HttpEndpoints;
  const url = (path: string) => `http://127.0.0.1:${endpoints.port}${path}`;

  before(async () => {
    endpoints = await startHttpEndpoints({
      port: 0,
      registry: createMetricsRegistry(),
      readiness: () => ({ ready: state === 'ready', state }),
    });
  });
  after(() => endpoints.close());

  it('answers /readyz 503 → 200 → 503 → 503 through starting → ready → draining → stopped', async () => {
    const seen: Array<[number, unknown]> = [];
    for (const s of ['starting', 'ready', 'draining', 'stopped'] as const) {
      state = s;
      const res = await fetch(url('/readyz'));
      seen.push([res.status, await res.json()]);
    }
    assert.deepEqual(seen, [
      [503, { ready: false, state: 'starting' }],
      [200, { ready: true, state: 'ready' }],
      [503, { ready: false, state: 'draining' }],
      [503, { ready: false, state: 'stopped' }],
    ]);
  });

  it('answers /healthz 200 in every state', async () => {
    for (const s of ['starting', 'draining'] as const) {
      state = s;
      const res = await fetch(url('/healthz'));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ok' });
    }
  });

  it('exposes only the state in readiness bodies, whatever the callback returns', async () => {
    const secretive = await startHttpEndpoints({
      port: 0,
      registry: createMetricsRegistry(),
      readiness: () => ({ ready: true, state: 'ready', natsPassword: 'hunter2' }) as never,
    });
    try {
      const body = await (await fetch(`http://127.0.0.1:${secretive.port}/readyz`)).text();
      assert.equal(body, '{"ready":true,"state":"ready"}');
    } finally {
      await secretive.close();
    }
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    assert.equal((await fetch(url('/nope'))).status, 404);
    const post = await fetch(url('/metrics'), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('closes with a request in flight: its connection is ended and the port is free', { timeout: 30_000 }, async () => {
    // a scrape that never finishes: a gauge whose collect() waits for the test
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let scraping!: () => void;
    const scraped = new Promise<void>((resolve) => (scraping = resolve));
    const registry = createMetricsRegistry();
    new Gauge({ name: 'advclip_test_held', help: 'held', registers: [registry], collect: async () => (scraping(), await held) });
    const extra = await startHttpEndpoints({ port: 0, registry, readiness: () => ({ ready: true, state: 'ready' }) });
    const socket = createConnection({ host: '127.0.0.1', port: extra.port });
    socket.on('error', () => undefined); // the server resets it: ECONNRESET
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n');
    await scraped;
    // server.close() alone waits for the request (a minute or more): close() must end it
    await extra.close();
    await ended;
    release();
    // nothing answers on the port, and it is free again: it binds
    await assert.rejects(fetch(`http://127.0.0.1:${extra.port}/healthz`));
    const again = createServer();
    await new Promise<void>((resolve, reject) => again.once('error', reject).listen(extra.port, '127.0.0.1', resolve));
    await new Promise((resolve) => again.close(resolve));
  });
});
