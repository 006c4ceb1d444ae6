import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CoordinatorMetricNames } from '../../../services/protocol/metrics.ts';
import { metricNames } from './promql.ts';
import { repoRoot, run, skipUnless } from './tools.ts';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string };
}
const rules = (parse(readFileSync(join(repoRoot, 'deploy/prometheus/rules.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> })
  .groups.flatMap((g) => g.rules);
const rule = (name: string) => rules.find((r) => r.alert === name)!;

describe('Prometheus alert rules', () => {
  it('cover loss NaN, no workers, step stalled, δ saturated and target down', () => {
    assert.deepEqual(rules.map((r) => r.alert).sort(), [
      'AdvclipDeltaSaturated',
      'AdvclipLossNaN',
      'AdvclipNoWorkers',
      'AdvclipStepStalled',
      'AdvclipTargetDown',
    ]);
    assert.equal(rule('AdvclipLossNaN').expr, 'advclip_loss != advclip_loss');
    assert.deepEqual([rule('AdvclipNoWorkers').expr, rule('AdvclipNoWorkers').for], ['advclip_workers == 0', '1m']);
    assert.match(rule('AdvclipStepStalled').expr, /changes\(advclip_step\[5m\]\) == 0/);
    for (const r of rules) assert.ok(r.labels.severity && r.annotations.summary, r.alert);
  });

  it('each have a scenario in rules.test.yml', () => {
    const tests = parse(readFileSync(join(repoRoot, 'deploy/prometheus/rules.test.yml'), 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string }> }>;
    };
    const tested = new Set(tests.tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    assert.deepEqual([...tested].sort(), rules.map((r) => r.alert).sort());
  });

  it('read only metrics that services/protocol/metrics.ts defines (and `up`)', () => {
    const known = new Set<string>([...Object.values(CoordinatorMetricNames), 'up']);
    const used = rules.flatMap((r) => metricNames(r.expr));
    assert.ok(used.includes(CoordinatorMetricNames.epsilon) && used.includes(CoordinatorMetricNames.deltaLinf));
    for (const name of used) assert.ok(known.has(name), name);
  });
});

describe('promtool', { skip: skipUnless('promtool', "Debian's prometheus package ships it") }, () => {
  const promtool = (...args: string[]) => {
    const r = run('promtool', args);
    assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    return r.stdout + r.stderr;
  };

  it('check config: prometheus.yml is valid and finds its rule file', () => {
    assert.match(promtool('check', 'config', 'deploy/prometheus/prometheus.yml'), /SUCCESS: 1 rule files found/);
  });

  it('check rules: every rule parses', () => {
    assert.match(promtool('check', 'rules', 'deploy/prometheus/rules.yml'), new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  it('test rules: each alert fires on its scenario and stays quiet on a healthy one', () => {
    assert.match(promtool('test', 'rules', 'deploy/prometheus/rules.test.yml'), /SUCCESS/);
  });
});
