/**
 * Generates the kube-prometheus-stack objects of deploy/k8s/components/monitoring
 * from the files compose uses, so the two never drift:
 *   deploy/prometheus/rules.yml            → prometheusrule.yaml (PrometheusRule, same groups)
 *   deploy/grafana/dashboards/advclip.json → grafana-dashboard.yaml (ConfigMap for Grafana's sidecar)
 *
 *   node --import tsx scripts/k8s-monitoring.ts           write them
 *   node --import tsx scripts/k8s-monitoring.ts --check   exit 1 when they are stale
 * test/unit/deploy/k8s-monitoring.test.ts runs the check.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

const root = new URL('../', import.meta.url).pathname;
export const RULES_SOURCE = 'deploy/prometheus/rules.yml';
export const DASHBOARD_SOURCE = 'deploy/grafana/dashboards/advclip.json';
export const RULE_TARGET = 'deploy/k8s/components/monitoring/prometheusrule.yaml';
export const DASHBOARD_TARGET = 'deploy/k8s/components/monitoring/grafana-dashboard.yaml';
/** the label kube-prometheus-stack selects rules and monitors by; overlays set it to their Helm release */
export const RELEASE_LABEL = 'release';

const header = (source: string) =>
  `# GENERATED from ${source} by scripts/k8s-monitoring.ts; edit the source and re-run it.\n`;

export function prometheusRule(rulesYaml: string): Record<string, unknown> {
  const { groups } = parse(rulesYaml) as { groups: unknown[] };
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'advclip', labels: { [RELEASE_LABEL]: 'kube-prometheus-stack' } },
    spec: { groups },
  };
}

/**
 * The compose dashboard names its Prometheus by uid; kube-prometheus-stack's
 * datasource has another, so here every Prometheus reference goes through a
 * `datasource` variable (defaulting to the stack's default datasource).
 */
export function stackDashboard(dashboardJson: string): Record<string, unknown> {
  const dashboard = JSON.parse(dashboardJson) as Record<string, unknown> & { templating?: { list?: unknown[] } };
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node === null || typeof node !== 'object') return node;
    const entries = Object.entries(node).map(([k, v]) => {
      const isPromRef = k === 'datasource' && typeof v === 'object' && v !== null && (v as { type?: string }).type === 'prometheus';
      return [k, isPromRef ? { type: 'prometheus', uid: '${datasource}' } : rewrite(v)];
    });
    return Object.fromEntries(entries);
  };
  const variable = { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0 };
  const out = rewrite(dashboard) as typeof dashboard;
  out.templating = { ...(out.templating ?? {}), list: [variable, ...(out.templating?.list ?? [])] };
  return out;
}

export function dashboardConfigMap(dashboardJson: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'advclip-grafana-dashboard',
      // Grafana's sidecar (kube-prometheus-stack: grafana.sidecar.dashboards) loads ConfigMaps with this label
      labels: { grafana_dashboard: '1' },
      annotations: { grafana_folder: 'advclip' },
    },
    data: { 'advclip.json': `${JSON.stringify(stackDashboard(dashboardJson), null, 2)}\n` },
  };
}

/** The generated files, path → text. */
export function generated(read: (path: string) => string = (p) => readFileSync(join(root, p), 'utf8')): Map<string, string> {
  return new Map([
    [RULE_TARGET, header(RULES_SOURCE) + stringify(prometheusRule(read(RULES_SOURCE)), { lineWidth: 0 })],
    [DASHBOARD_TARGET, header(DASHBOARD_SOURCE) + stringify(dashboardConfigMap(read(DASHBOARD_SOURCE)), { lineWidth: 0 })],
  ]);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [path, text] of generated()) {
    const current = (() => {
      try {
        return readFileSync(join(root, path), 'utf8');
      } catch {
        return '';
      }
    })();
    if (current === text) continue;
    if (check) {
      process.stderr.write(`${path} is stale: run node --import tsx scripts/k8s-monitoring.ts\n`);
      stale++;
    } else {
      writeFileSync(join(root, path), text);
      process.stderr.write(`wrote ${path}\n`);
    }
  }
  process.exitCode = stale ? 1 : 0;
}
