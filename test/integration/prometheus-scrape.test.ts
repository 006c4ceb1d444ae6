/**
 * A real Prometheus (the compose file's image where a Docker engine is, else
 * Debian's binary: test/helpers/services.ts) scrapes a live advclip /metrics
 * endpoint on loopback with the shipped alert rules loaded: its HTTP API
 * returns advclip_loss samples, the loss-NaN alert fires, and every dashboard
 * query returns data.
 *
 * The endpoint here is served by startHttpEndpoints with the coordinator and
 * worker metrics; scraping a running `advclip cluster` is the cluster's test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Attacks,
  GradParams,
  StepPhases,
  createCoordinatorMetrics,
  createMetricsRegistry,
  createWorkerMetrics,
  type CoordinatorMetrics,
} from '../../services/protocol/metrics.ts';
import { startHttpEndpoints, type HttpEndpoints } from '../../services/protocol/http-endpoints.ts';
import { prometheusSkip, startPrometheus, type PrometheusService } from '../helpers/services.ts';
import { repoRoot } from '../unit/deploy/tools.ts';

interface Vector {
  metric: Record<string, string>;
  value: [number, string];
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('Prometheus scrapes advclip /metrics', { skip: await prometheusSkip() }, () => {
  let endpoints: HttpEndpoints;
  let prometheus: PrometheusService;
  let metrics: CoordinatorMetrics;
  let tick: NodeJS.Timeout;

  const query = async (promql: string): Promise<Vector[]> => {
    const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: Vector[] } };
    assert.equal(body.status, 'success', `${promql}: ${body.error}`);
    return body.data.result;
  };

  before(async () => {
    const registry = createMetricsRegistry();
    metrics = createCoordinatorMetrics(registry);
    const worker = createWorkerMetrics(registry);
    metrics.loss.set({ kind: 'clean' }, 0.5);
    metrics.loss.set({ kind: 'adv' }, NaN);
    for (const param of GradParams) metrics.gradNorm.set({ param }, 1.5);
    for (const attack of Attacks) metrics.accuracy.set({ attack }, 0.6);
    metrics.deltaLinf.set(0.01);
    metrics.epsilon.set(4 / 255);
    metrics.workers.set(2);
    metrics.adapterVersion.set(3);
    metrics.step.set(3);
    metrics.iters.set(10);
    metrics.learningRate.set(0.01);
    metrics.etaSeconds.set(42);
    metrics.runInfo.set({ run: 'scrape-test', method: 'advclip-lora', perturbation: 'universal', sync: 'exact' }, 1);
    metrics.waitingForWorkers.set(0);
    metrics.rejectedResults.inc({ reason: 'stale_round' });
    worker.errors.inc({ kind: 'compute' });
    worker.adapterVersion.set(3);
    endpoints = await startHttpEndpoints({ port: 0, registry, readiness: () => ({ ready: true, state: 'ready' }) });

    // Keep series moving between scrapes so rate() has something to say.
    tick = setInterval(() => {
      for (const phase of StepPhases) metrics.stepSeconds.observe({ phase }, 0.01 + Math.random() * 0.05);
      metrics.workerSamples.inc({ worker: 'w-0' }, 8);
      metrics.workerSamples.inc({ worker: 'w-1' }, 8);
      metrics.networkBytes.inc({ direction: 'sent', message: 'task' }, 600_000);
      metrics.networkBytes.inc({ direction: 'received', message: 'result' }, 2_400_000);
      worker.samplesProcessed.inc(8);
      metrics.lossTotal.inc({ kind: 'clean' }, 0.5);
      metrics.lossTotal.inc({ kind: 'adv' }, 0.9);
      metrics.steps.inc();
      worker.computeSeconds.observe(0.02);
    }, 100);
    tick.unref();

    const rules = join(repoRoot, 'deploy/prometheus/rules.yml');
    prometheus = await startPrometheus({
      config: {
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [rules],
        scrape_configs: [{ job_name: 'advclip-coordinator', static_configs: [{ targets: [`127.0.0.1:${endpoints.port}`] }] }],
      },
      files: [rules],
    });
    await until('prometheus ready', async () => ((await fetch(`${prometheus.url}/-/ready`)).ok ? true : undefined));
  });

  after(async () => {
    clearInterval(tick);
    await prometheus?.close();
    await endpoints?.close();
  });

  it('returns advclip_loss samples from its HTTP API, NaN included', async (t) => {
    t.diagnostic(`Prometheus runs as a ${prometheus.backend}`);
    const result = await until('advclip_loss samples', async () => {
      const r = await query('advclip_loss');
      return r.length === 2 ? r : undefined;
    });
    const byKind = Object.fromEntries(result.map((v) => [v.metric.kind, v.value[1]]));
    assert.deepEqual(byKind, { clean: '0.5', adv: 'NaN' }, prometheus.log());
    assert.equal(result[0].metric.job, 'advclip-coordinator');
  });

  it('fires AdvclipLossNaN from the shipped rules on the NaN loss', async () => {
    const alert = await until('AdvclipLossNaN firing', async () => {
      const res = (await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()) as {
        data: { alerts: Array<{ labels: Record<string, string>; state: string }> };
      };
      return res.data.alerts.find((a) => a.labels.alertname === 'AdvclipLossNaN' && a.state === 'firing');
    });
    assert.equal(alert.labels.kind, 'adv');
    const rules = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ health: string; name: string }> }> } };
    for (const r of rules.data.groups.flatMap((g) => g.rules)) assert.equal(r.health, 'ok', r.name);
  });

  it('answers every dashboard query with data', async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana/dashboards/advclip.json'), 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    // The dashboard's variables as Grafana fills them in: the scrape is every 1 s here.
    const exprs = dashboard.panels.flatMap((p) =>
      p.targets.map((t) => ({ title: p.title, expr: t.expr.replaceAll('$__rate_interval', '10s').replaceAll('$run', 'scrape-test') })),
    );
    for (const { title, expr } of exprs) {
      const result = await until(`data for "${title}": ${expr}`, async () => {
        const r = await query(expr);
        return r.length > 0 ? r : undefined;
      });
      assert.ok(result.length > 0);
    }
  });
});
