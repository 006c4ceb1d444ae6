import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import {
  Attacks,
  CoordinatorMetricNames,
  GradParams,
  LossKinds,
  StepPhases,
  createCoordinatorMetrics,
  createMetricsRegistry,
  createWorkerMetrics,
} from '../../../services/protocol/metrics.ts';
import { startHttpEndpoints } from '../../../services/protocol/http-endpoints.ts';
import { parseExposition } from '../../../services/protocol/exposition.ts';
import { metricNames } from './promql.ts';
import { repoRoot, run, skipUnless } from './tools.ts';

interface Panel {
  id: number;
  title: string;
  description?: string;
  type: string;
  datasource: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets: Array<{ expr: string; datasource: { uid: string } }>;
}

interface Variable {
  name: string;
  type: string;
  query: unknown;
  current: { value: string };
  allValue?: string;
}

const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana/dashboards/advclip.json'), 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
};
const panels = dashboard.panels;
/** An expression as Prometheus gets it from Grafana: the variables replaced by values. */
const substituted = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$run', '.*');
const exprs = panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
const referenced = new Set(exprs.flatMap((e) => metricNames(e.expr)));

/** Every series a coordinator and a worker export, read from a live /metrics scrape. */
async function scrapedSeriesNames(): Promise<Set<string>> {
  const registry = createMetricsRegistry();
  const c = createCoordinatorMetrics(registry);
  const w = createWorkerMetrics(registry);
  // Labelled series appear only once a label value is used.
  for (const kind of LossKinds) c.loss.set({ kind }, 1);
  for (const param of GradParams) c.gradNorm.set({ param }, 1);
  for (const attack of Attacks) c.accuracy.set({ attack }, 0.5);
  for (const phase of StepPhases) c.stepSeconds.observe({ phase }, 0.01);
  c.workerSamples.inc({ worker: 'w-0' });
  c.rejectedResults.inc({ reason: 'stale_round' });
  c.networkBytes.inc({ direction: 'sent', message: 'task' }, 100);
  for (const kind of LossKinds) c.lossTotal.inc({ kind }, 1);
  c.runInfo.set({ run: 'r', method: 'advclip-lora', perturbation: 'universal', sync: 'exact' }, 1);
  w.errors.inc({ kind: 'compute' });
  const endpoints = await startHttpEndpoints({ port: 0, registry, readiness: () => ({ ready: true, state: 'ready' }) });
  try {
    const text = await (await fetch(`http://127.0.0.1:${endpoints.port}/metrics`)).text();
    return new Set([...parseExposition(text).values()].flatMap((f) => f.samples.map((s) => s.name)));
  } finally {
    await endpoints.close();
  }
}

describe('Grafana dashboard deploy/grafana/dashboards/advclip.json', () => {
  let exported: Set<string>;
  before(async () => {
    exported = await scrapedSeriesNames();
  });

  it('parses, with unique panel ids and every panel on the `datasource` variable, which defaults to the provisioned Prometheus', () => {
    assert.equal(dashboard.uid, 'advclip-training');
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length);
    const provisioned = parse(readFileSync(join(repoRoot, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: Array<{ uid: string; type: string }>;
    };
    const { uid, type } = provisioned.datasources[0];
    const datasource = dashboard.templating.list.find((v) => v.name === 'datasource')!;
    assert.deepEqual([datasource.type, datasource.query, datasource.current.value], ['datasource', type, uid]);
    for (const p of panels) {
      assert.deepEqual(p.datasource, { type, uid: '${datasource}' }, p.title);
      assert.ok(p.targets.length > 0 && p.targets.every((t) => t.expr && t.datasource.uid === '${datasource}'), p.title);
    }
  });

  it('has a `run` variable from advclip_run_info, applied to every coordinator panel', () => {
    const run = dashboard.templating.list.find((v) => v.name === 'run')!;
    assert.equal(run.type, 'query');
    assert.match(JSON.stringify(run.query), /label_values\(advclip_run_info, run\)/);
    assert.equal(run.allValue, '.*');
    const coordinatorOnly = exprs.filter((e) => !/advclip_worker_(compute|errors|adapter)|advclip_rejected/.test(e.expr));
    for (const e of coordinatorOnly) assert.match(e.expr, /advclip_run_info\{run=~"\$run"\}/, e.panel);
  });

  it('reads per-step loss from sum and step counters (no scrape-interval aliasing), shows lr, ETA and one panel per gradient norm', () => {
    const loss = panels.find((p) => p.title.startsWith('Loss per step'))!;
    for (const t of loss.targets) assert.match(t.expr, /rate\(advclip_loss_sum_total\{kind="(clean|adv)"\}\[\$__rate_interval\]\) \/ ignoring\(kind\) group_left rate\(advclip_steps_total/);
    for (const param of GradParams) {
      assert.equal(exprs.filter((e) => e.expr.includes(`advclip_grad_norm{param="${param}"}`)).length, 1, param);
    }
    assert.ok(referenced.has(CoordinatorMetricNames.learningRate) && referenced.has(CoordinatorMetricNames.etaSeconds));
  });

  it('says why the accuracy panel is empty while no evaluation runs during training, and which flag fills it', () => {
    const accuracy = panels.find((p) => p.title.startsWith('Accuracy'))! as Panel & { fieldConfig: { defaults: { noValue?: string } } };
    assert.match(accuracy.fieldConfig.defaults.noValue ?? '', /No evaluation during training yet \(--eval-every N\)/);
    assert.match(accuracy.description ?? '', /--eval-every N/);
    assert.match(accuracy.description ?? '', /advclip eval/);
  });

  it('lays panels out without overlaps on the 24-column grid', () => {
    const cells = new Set<string>();
    for (const { title, gridPos: g } of panels) {
      assert.ok(g.x + g.w <= 24, title);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('shows what the design asks for: losses, accuracies, grad norms, ‖δ‖∞ with ε, step phases, workers, samples/s, adapter version, network bytes', () => {
    const n = CoordinatorMetricNames;
    for (const name of [
      n.lossTotal,
      n.steps,
      n.accuracy,
      n.gradNorm,
      n.deltaLinf,
      n.epsilon,
      `${n.stepSeconds}_sum`,
      `${n.stepSeconds}_count`,
      `${n.stepSeconds}_bucket`,
      n.workers,
      n.workerSamples,
      n.adapterVersion,
      n.networkBytes,
    ]) {
      assert.ok(referenced.has(name), `the dashboard shows ${name}`);
    }
    const byExpr = (re: RegExp) => exprs.filter((e) => re.test(e.expr)).map((e) => e.panel);
    assert.ok(byExpr(/rate\(advclip_worker_samples_total\[\$__rate_interval\]\)/).length > 0, 'per-worker samples/s');
    assert.ok(byExpr(/histogram_quantile\(0\.\d+, .*advclip_step_seconds_bucket/).length > 0, 'step time quantile');
    assert.ok(byExpr(/rate\(advclip_step_seconds_sum\[\$__rate_interval\]\).*\/.*rate\(advclip_step_seconds_count\[\$__rate_interval\]\)/).length > 0, 'mean step time');
    assert.ok(byExpr(/sum by \(instance, direction\) \(rate\(advclip_network_bytes_total\[\$__rate_interval\]\)\)/).length > 0, 'network bytes/s by direction');
  });

  it('names only series a live /metrics scrape of coordinator and worker exports', () => {
    assert.ok(exported.has('advclip_step_seconds_bucket') && !exported.has('advclip_step_seconds'), 'histograms export _bucket/_sum/_count only');
    const missing = [...referenced].filter((name) => !exported.has(name));
    assert.deepEqual(missing, [], `referenced by the dashboard but not exported: ${missing.join(', ')}`);
  });

  describe('PromQL syntax', { skip: skipUnless('promtool', "Debian's prometheus package ships it") }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'advclip-dashboard-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('every panel expression parses (promtool check rules on them as recording rules)', () => {
      const file = join(dir, 'dashboard-exprs.yml');
      const recording = exprs.map((e, i) => ({ record: `advclip:dashboard_expr_${i}`, expr: substituted(e.expr) }));
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: recording }] }));
      const r = run('promtool', ['check', 'rules', file]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
    });
  });
});
