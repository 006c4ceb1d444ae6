/**
 * docs/dashboard.png: the Grafana dashboard's series from real scraped data,
 * without Grafana (not in Debian).
 *
 * A real `advclip cluster` trains (the shipped models/clip-small when it is
 * there, else the tiny test fixture) while the Debian `prometheus` scrapes
 * its coordinator and workers every second; then every timeseries panel of
 * deploy/grafana/dashboards/advclip.json (and the Workers stat) is asked
 * from Prometheus' HTTP API as a range query and drawn as a small line chart.
 *
 *   npx tsx scripts/dashboard-snapshot.ts [--seconds 75] [--iters N] [--out docs/dashboard.png]
 *
 * `startScrapedCluster` is the setup this script and
 * test/integration/prometheus-cluster.test.ts share.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { writeChartGridPng, type ChartSpec, type Series } from '../services/io/plot.ts';

export const REPO = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(REPO, 'bin/advclip.mjs');
export const DASHBOARD = join(REPO, 'deploy/grafana/dashboards/advclip.json');

export interface Panel {
  readonly title: string;
  readonly type: string;
  readonly targets: readonly { readonly expr: string; readonly legendFormat?: string }[];
  readonly fieldConfig?: { readonly defaults?: { readonly unit?: string } };
}

export const dashboardPanels = (): Panel[] => (JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels;

export interface InstantSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface RangeSeries {
  readonly metric: Record<string, string>;
  readonly values: [number, string][];
}

export interface ScrapedClusterOptions {
  /** `advclip cluster` flags after `--workers N` (model, data, training flags). */
  readonly clusterArgs: readonly string[];
  readonly workers: number;
  /** Prometheus binary (default: `prometheus` on PATH). */
  readonly prometheus?: string;
  /** How long the cluster may take to start its workers (ms). */
  readonly startTimeoutMs?: number;
}

export interface ScrapedCluster {
  /** Prometheus' base URL, e.g. http://127.0.0.1:41234 */
  readonly api: string;
  /** host:port of the coordinator's /metrics */
  readonly coordinatorTarget: string;
  /** worker name (worker-1 …) → host:port of its /metrics */
  readonly workerTargets: ReadonlyMap<string, string>;
  /** Unix seconds when Prometheus was ready. */
  readonly startedAt: number;
  /** Resolves with the cluster's exit code once it exits. */
  readonly clusterExit: Promise<number | null>;
  running(): boolean;
  /** The cluster's stderr (its and its workers' JSON log lines) and Prometheus' warnings so far. */
  logs(): string;
  query(promql: string, time?: number): Promise<InstantSample[]>;
  queryRange(promql: string, start: number, end: number, stepSeconds: number): Promise<RangeSeries[]>;
  /** SIGTERM to the cluster (it drains: step finishes, outputs written, workers drained); its exit code. */
  drain(timeoutMs?: number): Promise<number | null>;
  /** Stops whatever is still running (cluster, its children, Prometheus) and removes the temp directory. */
  close(): Promise<void>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids of a process's children (Linux /proc), for a last-resort kill of what the cluster started. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return true;
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(exited(child)), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
    child.kill(signal);
  });
}

/**
 * Starts `advclip cluster --workers N … --metrics-port 0`, reads the bound
 * metrics ports from its log lines (the coordinator's "coordinator listening
 * on …" with `metrics`, each worker's "ready" with `metrics`), then starts
 * Prometheus scraping all of them every second.
 */
export async function startScrapedCluster(o: ScrapedClusterOptions): Promise<ScrapedCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'advclip-scraped-cluster-'));
  const cluster = spawn(process.execPath, [BIN, 'cluster', '--workers', String(o.workers), ...o.clusterArgs, '--metrics-port', '0', '--out', join(dir, 'adapter')], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const clusterExit = new Promise<number | null>((resolve) => cluster.once('exit', (code) => resolve(code)));
  let clusterLog = '';
  let promLog = '';
  let coordinatorTarget: string | undefined;
  const workerTargets = new Map<string, string>();
  let pending = '';
  cluster.stderr!.on('data', (chunk: Buffer) => {
    clusterLog += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { msg: string; metrics?: string | number; worker?: string };
        if (entry.msg.startsWith('coordinator listening on ') && typeof entry.metrics === 'string') coordinatorTarget = new URL(entry.metrics).host;
        else if (entry.msg === 'ready' && typeof entry.metrics === 'number' && entry.worker) workerTargets.set(entry.worker, `127.0.0.1:${entry.metrics}`);
      } catch {
        continue;
      }
    }
  });
  let children: number[] = [];
  let prometheus: ChildProcess | undefined;

  const close = async () => {
    if (!exited(cluster)) {
      children = [...new Set([...children, ...childPids(cluster.pid!)])];
      if (!(await stopProcess(cluster, 'SIGTERM', 30_000))) await stopProcess(cluster, 'SIGKILL', 5_000);
    }
    // normally the cluster has stopped its workers and nats-server itself
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        continue; // already gone
      }
    }
    if (prometheus) await stopProcess(prometheus, 'SIGTERM', 10_000).then((ok) => ok || stopProcess(prometheus!, 'SIGKILL', 5_000));
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + (o.startTimeoutMs ?? 120_000);
    const waitFor = async (what: string, ready: () => boolean | Promise<boolean>) => {
      while (!(await ready())) {
        if (exited(cluster)) throw new Error(`advclip cluster exited (code ${cluster.exitCode}) before ${what}:\n${clusterLog}`);
        if (prometheus && exited(prometheus)) throw new Error(`prometheus exited (code ${prometheus.exitCode}):\n${promLog}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${clusterLog}\n--- prometheus ---\n${promLog}`);
        await sleep(100);
      }
    };
    // Prometheus starts once the coordinator's port is known, while the
    // workers load the model: training begins as soon as they join, and its
    // first steps should be scraped. Workers come through file_sd.
    await waitFor("the coordinator's metrics port", () => coordinatorTarget !== undefined);
    const workersFile = join(dir, 'workers.json');
    const writeWorkers = (targets: string[]) => {
      writeFileSync(`${workersFile}.tmp`, JSON.stringify([{ targets }]));
      renameSync(`${workersFile}.tmp`, workersFile);
    };
    writeWorkers([]);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
        rule_files: [join(REPO, 'deploy/prometheus/rules.yml')],
        scrape_configs: [
          { job_name: 'advclip-coordinator', static_configs: [{ targets: [coordinatorTarget] }] },
          { job_name: 'advclip-worker', file_sd_configs: [{ files: [workersFile], refresh_interval: '1s' }] },
        ],
      }),
    );
    // port 0: Prometheus binds a free port itself and logs it (info level) — no race for a port closed and handed over
    prometheus = spawn(
      o.prometheus ?? 'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, '--web.listen-address=127.0.0.1:0', '--log.level=info'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let webAddress: string | undefined;
    let promPending = '';
    prometheus.stderr!.on('data', (chunk: Buffer) => {
      const lines = (promPending + chunk.toString()).split('\n');
      promPending = lines.pop()!;
      for (const line of lines) {
        webAddress ??= /msg="Listening on" address=(127\.0\.0\.1:\d+)/.exec(line)?.[1];
        if (/level=(warn|error)/.test(line)) promLog += `${line}\n`;
      }
    });
    await waitFor("prometheus' web port", () => webAddress !== undefined);
    const api = `http://${webAddress}`;
    await waitFor(`${o.workers} workers' metrics ports`, () => workerTargets.size >= o.workers);
    children = childPids(cluster.pid!);
    writeWorkers([...workerTargets.values()]);
    await waitFor(`prometheus ready on ${api}`, () => fetch(`${api}/-/ready`).then((r) => r.ok, () => false));

    const get = async <T>(path: string, params: Record<string, string>): Promise<T> => {
      const res = await fetch(`${api}${path}?${new URLSearchParams(params)}`);
      const body = (await res.json()) as { status: string; error?: string; data: { result: T } };
      if (body.status !== 'success') throw new Error(`${params.query}: ${body.error}`);
      return body.data.result;
    };
    return {
      api,
      coordinatorTarget: coordinatorTarget!,
      workerTargets,
      startedAt: Date.now() / 1000,
      clusterExit,
      running: () => !exited(cluster),
      logs: () => `${clusterLog}${promLog ? `\n--- prometheus ---\n${promLog}` : ''}`,
      query: (promql, time) => get<InstantSample[]>('/api/v1/query', { query: promql, ...(time !== undefined ? { time: String(time) } : {}) }),
      queryRange: (promql, start, end, step) => get<RangeSeries[]>('/api/v1/query_range', { query: promql, start: String(start), end: String(end), step: String(step) }),
      drain: async (timeoutMs = 30_000) => {
        if (!exited(cluster)) {
          children = [...new Set([...children, ...childPids(cluster.pid!)])];
          await stopProcess(cluster, 'SIGTERM', timeoutMs);
        }
        return exited(cluster) ? clusterExit : null;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Grafana's `{{label}}` legend templates. */
export const legend = (format: string | undefined, metric: Record<string, string>): string =>
  format ? format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, label: string) => metric[label] ?? '') : JSON.stringify(metric);

// ---------------------------------------------------------------------------

const SECONDS_UNITS = new Set(['s']);

/** The smallest of 1, 2, 2.5, 5 × 10^k that is at least x. */
function niceStep(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= x * (1 - 1e-9))!;
}

/** 0 (or below) to a round top with 5 round intervals, and labels with just enough decimals. */
function yAxis(values: readonly number[]): { range: [number, number]; format: (v: number) => string } {
  const lo = Math.min(0, ...values);
  const step = niceStep(Math.max((Math.max(...values) - lo) / 5, 1e-12) * 1.02);
  const bottom = Math.floor(lo / step) * step;
  const exponent = Math.floor(Math.log10(step) + 1e-9);
  const mantissa = step / 10 ** exponent; // 1, 2, 2.5 or 5
  const digits = Math.min(8, Math.max(0, -exponent + (Math.abs(mantissa - 2.5) < 1e-6 ? 1 : 0)));
  return { range: [bottom, bottom + 5 * step], format: (v) => v.toFixed(digits) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '75' },
      iters: { type: 'string' },
      workers: { type: 'string', default: '2' },
      out: { type: 'string', default: join(REPO, 'docs/dashboard.png') },
    },
  });
  const shipped = join(REPO, 'models/clip-small');
  const model = existsSync(join(shipped, 'config.json')) ? shipped : join(REPO, 'test/fixtures/tiny-clip-f32');
  const seconds = Number(values.seconds);
  const workers = Number(values.workers);
  // Enough steps for the time on the tiny fixture (0.1–0.2 s a step on 2 shared cores); the run is stopped (drained) at --seconds either way.
  const iters = values.iters ?? (model === shipped ? '2000' : String(Math.round(seconds * 6)));
  const args = ['--model', model, '--data', join(REPO, 'data/shapes-colours'), '--shots', '4', '--iters', iters, '--batch-size', '8', '--chunk-size', '2', '--epsilon', '2/255'];
  process.stderr.write(`dashboard-snapshot: advclip cluster --workers ${workers} ${args.join(' ')} for up to ${seconds} s\n`);

  const c = await startScrapedCluster({ clusterArgs: args, workers, startTimeoutMs: 300_000 });
  try {
    const t0 = Date.now();
    process.stderr.write(`dashboard-snapshot: cluster and prometheus up (${c.api})\n`);
    const until = Date.now() + seconds * 1000;
    while (c.running() && Date.now() < until) await sleep(500);
    if (c.running()) process.stderr.write('dashboard-snapshot: time is up; draining the cluster\n');
    const code = await c.drain();
    if (code !== 0) throw new Error(`advclip cluster exited with ${code}:\n${c.logs()}`);
    process.stderr.write(`dashboard-snapshot: cluster done after ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    await sleep(1500); // the last scrapes land
    const end = Date.now() / 1000;
    // from a few seconds before the first step to the end
    const [stepSeries] = await c.queryRange('advclip_step', c.startedAt, end, 1);
    const firstStep = stepSeries?.values.find(([, v]) => Number(v) > 0)?.[0];
    const start = firstStep ?? c.startedAt;
    const step = Math.max(1, Math.round((end - start) / 300));
    const xStep = niceStep((end - start) / 6);
    const xTicks = Array.from({ length: Math.floor((end - start) / xStep) + 1 }, (_, i) => ({ value: i * xStep, label: String(Number((i * xStep).toPrecision(6))) }));

    // legends: worker-1 rather than 127.0.0.1:40433 (instance) or w1-worker-1-3fa2c1 (the coordinator's worker id)
    const workerName = new Map([...c.workerTargets].map(([name, target]) => [target, name]));
    const readable = (metric: Record<string, string>): Record<string, string> => ({
      ...metric,
      ...(metric.instance && workerName.has(metric.instance) ? { instance: workerName.get(metric.instance)! } : {}),
      ...(metric.worker ? { worker: [...c.workerTargets.keys()].find((name) => new RegExp(`(^|-)${name}(-|$)`).test(metric.worker)) ?? metric.worker } : {}),
    });
    const panels = dashboardPanels().filter((p) => p.type === 'timeseries' || p.title === 'Workers');
    const charts: ChartSpec[] = [];
    const empty: string[] = [];
    for (const panel of panels) {
      const unit = panel.fieldConfig?.defaults?.unit;
      const scale = unit && SECONDS_UNITS.has(unit) ? 1000 : panel.title.startsWith('‖δ‖∞') ? 255 : 1;
      const series: Series[] = [];
      for (const target of panel.targets) {
        const ofTarget: Series[] = [];
        // The dashboard's variables as Grafana fills them in: every run, 1-minute rate windows.
        const expr = target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$run', '.*');
        for (const s of await c.queryRange(expr, start, end, step)) {
          ofTarget.push({ name: legend(target.legendFormat, readable(s.metric)), points: s.values.filter(([t]) => t >= start).map(([t, v]) => [t - start, Number(v) * scale] as const) });
        }
        series.push(...ofTarget.sort((a, b) => a.name.localeCompare(b.name)));
      }
      const points = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
      if (!points.length) {
        empty.push(panel.title);
        continue;
      }
      const y = yAxis(points);
      const yLabel = scale === 1000 ? 'ms' : scale === 255 ? '× 1/255' : unit === 'percentunit' ? 'fraction' : unit === 'short' || !unit ? '' : unit;
      charts.push({ title: panel.title, xLabel: 'seconds since the first step', yLabel, series, yRange: y.range, yTickFormat: y.format, xRange: [0, end - start], xTicks });
    }
    const modelName = model === shipped ? 'models/clip-small' : 'tiny test fixture';
    const steps = await c.query('max_over_time(advclip_step[1h])', end);
    mkdirSync(dirname(resolve(values.out!)), { recursive: true });
    await writeChartGridPng(
      charts,
      {
        columns: 3,
        cellWidth: 560,
        cellHeight: 320,
        title: 'advclip dashboard series, scraped by Prometheus from a live advclip cluster',
        subtitle: `${workers} workers, ${modelName}, data/shapes-colours, ${steps[0]?.value[1] ?? '?'} steps; range queries of deploy/grafana/dashboards/advclip.json (rates over 1 min windows read low in the first minute)`,
      },
      values.out!,
    );
    process.stderr.write(`dashboard-snapshot: wrote ${values.out} (${charts.length} panels${empty.length ? `; no data for: ${empty.join(', ')}` : ''})\n`);
  } finally {
    await c.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
