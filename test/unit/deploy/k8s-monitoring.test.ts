import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { DASHBOARD_SOURCE, DASHBOARD_TARGET, generated, RULE_TARGET, RULES_SOURCE } from '../../../scripts/k8s-monitoring.ts';
import { repoRoot } from './tools.ts';

const read = (p: string) => readFileSync(join(repoRoot, p), 'utf8');

describe('kube-prometheus-stack objects generated from the compose monitoring files', () => {
  it('the committed PrometheusRule and dashboard ConfigMap are what scripts/k8s-monitoring.ts generates now', () => {
    for (const [path, text] of generated()) assert.equal(read(path), text, `${path} is stale: run node --import tsx scripts/k8s-monitoring.ts`);
  });

  it('the check notices an edited source (it is not comparing a file with itself)', () => {
    const edited = generated((p) => (p === RULES_SOURCE ? read(p).replace('advclip_workers == 0', 'advclip_workers < 1') : read(p)));
    assert.notEqual(edited.get(RULE_TARGET), read(RULE_TARGET));
    assert.equal(edited.get(DASHBOARD_TARGET), read(DASHBOARD_TARGET));
  });

  it('the PrometheusRule holds exactly the groups of deploy/prometheus/rules.yml', () => {
    const rule = parse(read(RULE_TARGET));
    assert.equal(rule.kind, 'PrometheusRule');
    assert.deepEqual(rule.spec.groups, parse(read(RULES_SOURCE)).groups);
    assert.ok(rule.spec.groups.flatMap((g: { rules: unknown[] }) => g.rules).length >= 3);
  });

  it('the dashboard ConfigMap is the compose dashboard with its Prometheus chosen by a variable', () => {
    const cm = parse(read(DASHBOARD_TARGET));
    assert.equal(cm.metadata.labels.grafana_dashboard, '1');
    const source = JSON.parse(read(DASHBOARD_SOURCE));
    const stack = JSON.parse(cm.data['advclip.json']);
    const refs = (node: unknown): unknown[] =>
      Array.isArray(node) ? node.flatMap(refs) : node && typeof node === 'object' ? Object.entries(node).flatMap(([k, v]) => (k === 'datasource' ? [v] : refs(v))) : [];
    assert.ok(refs(source).length > 0);
    assert.ok(refs(stack).every((r) => JSON.stringify(r) === JSON.stringify({ type: 'prometheus', uid: '${datasource}' })), 'every Prometheus reference goes through ${datasource}');
    assert.deepEqual(stack.templating.list[0], { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0 });
    // apart from those references and the variable, the same dashboard
    const strip = (d: any) => JSON.parse(JSON.stringify({ ...d, templating: undefined }, (k, v) => (k === 'datasource' ? undefined : v)));
    assert.deepEqual(strip(stack), strip(source));
    const exprs = (d: any) => d.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
    assert.deepEqual(exprs(stack), exprs(source));
  });
});
