/**
 * A real Debian `prometheus` scrapes a running `advclip cluster --workers 2`
 * (its coordinator and both worker processes, every second, ports read from
 * the cluster's log lines): its HTTP API returns advclip_loss samples of both
 * kinds with finite values, advclip_workers reaches 2, the samples the
 * coordinator accepted from each worker grow, and every query of the Grafana
 * dashboard returns data — but accuracy, an evaluation's, which a training
 * run does not produce (rejected results and worker errors, labelled counters
 * that appear with their first event, read 0 until then); those series must
 * still be declared in the processes' /metrics.
 *
 * The setup is scripts/dashboard-snapshot.ts's (Prometheus and every
 * advclip process bind port 0 and report the port they got). The run asks
 * for 100,000 steps, more than the test can ever see: it trains until the
 * last assertion has seen what it waits for, however fast or slow a step
 * is, and ends only by SIGTERM — it then drains (the step in progress,
 * outputs, workers) and must exit 0. Waits are on Prometheus' answers
 * (polled: it has no push), never on a duration.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dashboardPanels, sleep, startScrapedCluster, type ScrapedCluster } from '../../scripts/dashboard-snapshot.ts';
import { metricNames } from '../unit/deploy/promql.ts';
import { PROMETHEUS, requiresBinary } from '../helpers/requires.ts';

const CLUSTER = ['--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--shots', '2', '--iters', '100000', '--batch-size', '8', '--chunk-size', '2'];

/** Dashboard series a training run has no samples of, and why. */
const NOT_FROM_TRAINING: Record<string, string> = {
  advclip_accuracy: 'set by an evaluation during training; this run has no --eval-every',
  advclip_rejected_results_total: 'a labelled counter appears with the first rejected result; a healthy run has none',
  advclip_worker_errors_total: 'a labelled counter appears with the first worker error; a healthy run has none',
};

const skip = requiresBinary(...PROMETHEUS);

describe('Prometheus scrapes a running advclip cluster', { skip, timeout: 600_000 }, () => {
  let c: ScrapedCluster;

  /** Polls Prometheus while the cluster trains; fails at once with the logs when the cluster has stopped. No deadline: the run does not end by itself, and the suite's timeout bounds a hang. */
  async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (!c.running()) throw new Error(`the cluster stopped before ${what}:\n${c.logs()}`);
      await sleep(250);
    }
  }
  const nonEmpty = <T>(r: T[]) => (r.length > 0 ? r : undefined);
  const now = () => Date.now() / 1000;

  before(async () => {
    c = await startScrapedCluster({ clusterArgs: CLUSTER, workers: 2, startTimeoutMs: 600_000 });
    // progress: steps taken and scraped a few times, both workers scraped
    await eventually('step 10 scraped', async () => nonEmpty(await c.query('advclip_step >= 10')));
    await eventually('3 scrapes of the loss', async () => nonEmpty(await c.query('min(count_over_time(advclip_loss[1m])) >= 3')));
    await eventually('both workers scraped', async () => nonEmpty(await c.query('count(up{job="advclip-worker"} == 1) == 2')));
  });

  after(async () => {
    await c?.close();
  });

  it('returns advclip_loss samples of kind adv and clean with finite values, instant and range', async () => {
    const instant = await c.query('advclip_loss');
    const kinds = Object.fromEntries(instant.map((s) => [s.metric.kind, Number(s.value[1])]));
    assert.deepEqual(Object.keys(kinds).sort(), ['adv', 'clean'], JSON.stringify(instant));
    for (const [kind, v] of Object.entries(kinds)) assert.ok(Number.isFinite(v) && v > 0, `advclip_loss{kind="${kind}"} = ${v}`);
    for (const s of instant) assert.equal(s.metric.job, 'advclip-coordinator');

    const range = await c.queryRange('advclip_loss', c.startedAt, now(), 1);
    assert.deepEqual(range.map((s) => s.metric.kind).sort(), ['adv', 'clean']);
    for (const s of range) {
      assert.ok(s.values.length >= 2, `${s.metric.kind}: ${s.values.length} points`);
      for (const [t, v] of s.values) assert.ok(Number.isFinite(Number(v)), `advclip_loss{kind="${s.metric.kind}"} = ${v} at ${t}`);
    }
  });

  it('sees advclip_workers == 2 and every target up', async () => {
    const workers = await c.queryRange('advclip_workers', c.startedAt, now(), 1);
    assert.equal(workers.length, 1);
    assert.ok(workers[0].values.some(([, v]) => v === '2'), `advclip_workers: ${JSON.stringify(workers[0].values)}`);
    const up = await c.query('up');
    const targets = up.map((s) => `${s.metric.job} ${s.metric.instance} ${s.value[1]}`).sort();
    const expected = [`advclip-coordinator ${c.coordinatorTarget} 1`, ...[...c.workerTargets.values()].map((t) => `advclip-worker ${t} 1`)].sort();
    assert.deepEqual(targets, expected);
  });

  it('sees advclip_worker_samples_total grow for each worker, and each worker count what it computed', async () => {
    const grew = (series: { metric: Record<string, string>; values: [number, string][] }[], n: number) =>
      series.length === n && series.every((s) => Number(s.values.at(-1)![1]) > Number(s.values[0][1])) ? series : undefined;
    const accepted = await eventually('advclip_worker_samples_total to grow for both workers', async () =>
      grew(await c.queryRange('advclip_worker_samples_total', c.startedAt, now(), 1), 2),
    );
    assert.equal(new Set(accepted.map((s) => s.metric.worker)).size, 2, JSON.stringify(accepted.map((s) => s.metric)));
    for (const s of accepted) assert.equal(s.metric.job, 'advclip-coordinator');
    const computed = await eventually('advclip_worker_samples_processed_total to grow on both workers', async () =>
      grew(await c.queryRange('advclip_worker_samples_processed_total', c.startedAt, now(), 1), 2),
    );
    assert.deepEqual(computed.map((s) => s.metric.instance).sort(), [...c.workerTargets.values()].sort());
  });

  it('answers every dashboard query with data, but those of series training does not produce', async (t) => {
    const panels = dashboardPanels();
    // The dashboard's variables as Grafana fills them in (scrapes every second here).
    const filled = (expr: string) => expr.replaceAll('$__rate_interval', '10s').replaceAll('$run', '.*');
    const queries = panels.flatMap((p) => p.targets.map((target) => ({ panel: p.title, expr: filled(target.expr), names: metricNames(target.expr) })));
    assert.ok(queries.length >= 15, `${queries.length} queries`);
    const withData = new Set<string>();
    for (const q of queries) {
      const absent = q.names.filter((n) => n in NOT_FROM_TRAINING);
      if (absent.length && !/or on\(\) vector\(0\)/.test(q.expr)) {
        const r = await c.query(q.expr); // a valid query: an error would throw
        t.diagnostic(`${q.panel}: ${q.expr} → ${r.length} series (${absent.map((n) => NOT_FROM_TRAINING[n]).join('; ')})`);
        if (r.length) withData.add(q.panel);
        continue;
      }
      await eventually(`data for "${q.panel}": ${q.expr}`, async () => nonEmpty(await c.query(q.expr)));
      withData.add(q.panel);
    }
    const empty = panels.map((p) => p.title).filter((title) => !withData.has(title));
    assert.deepEqual(empty.sort(), ['Accuracy: clean vs robust'], `panels without data: ${empty.join(', ')} (rejected results and worker errors read 0 while there are none)`);

    // Those without samples are still exported: declared (# TYPE) on the processes' /metrics.
    const exposition = (
      await Promise.all([c.coordinatorTarget, ...c.workerTargets.values()].map(async (target) => (await fetch(`http://${target}/metrics`)).text()))
    ).join('\n');
    for (const name of Object.keys(NOT_FROM_TRAINING)) {
      const family = name.replace(/_total$/, '');
      assert.match(exposition, new RegExp(`^# TYPE ${family}(_total)? (gauge|counter)$`, 'm'), `${name} is not declared on any /metrics`);
    }
  });

  it('drains on SIGTERM: the cluster exits 0 and its workers stop', async () => {
    const code = await c.drain(600_000);
    assert.equal(code, 0, c.logs());
    assert.equal(c.logs().match(/"msg":"stopped"/g)?.length, 2, 'both workers stopped');
  });
});
