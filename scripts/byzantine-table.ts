/**
 * The Byzantine table of docs/trust.md: federated mode (--sync local-delta)
 * on the shipped model with 5 workers, one of them Byzantine (its gradient
 * sums and local δ scaled by −10, or replaced by N(0, 1) noise), aggregated
 * by mean, median and trimmed-mean (--trim 1), against the fault-free run;
 * clean and PGD accuracy of every adapter with `advclip eval`.
 *
 *   npx tsx scripts/byzantine-table.ts [--iters 150] [--data data/shapes-colours] [--out DIR] [--json]
 *
 * The Byzantine worker is test code (test/helpers/byzantine.ts), so the
 * cluster is the integration tests' in-process one (coordinator as
 * `advclip coordinator` runs it, five Workers as `advclip worker` builds
 * them); there is no product flag that makes a worker lie. Training flags
 * are the demo's (advclip demo --help) but --sync local-delta, 5 workers and
 * chunks of 4, so every worker gets a share of each 32-image minibatch.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readSafetensors } from '../services/io/safetensors.ts';
import { byzantine, noise, scaledBy, type Tamper } from '../test/helpers/byzantine.ts';
import { runCluster } from '../test/integration/cluster-harness.ts';

const { values: flags } = parseArgs({
  options: {
    iters: { type: 'string', default: '150' },
    model: { type: 'string', default: 'models/clip-small' },
    data: { type: 'string', default: 'data/shapes-colours' },
    out: { type: 'string', default: 'results/byzantine' },
    'eval-limit': { type: 'string', default: '' },
    faults: { type: 'string', default: 'none,scaled,noise' },
    rules: { type: 'string', default: 'mean,median,trimmed-mean' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write('usage: npx tsx scripts/byzantine-table.ts [--iters 150] [--model models/clip-small] [--data data/shapes-colours] [--eval-limit N] [--faults none,scaled,noise] [--rules mean,median,trimmed-mean] [--out results/byzantine] [--json]\n');
  process.exit(0);
}

const WORKERS = 5;
const BYZANTINE = WORKERS - 1;
const EPSILON = '4/255';
const TRAIN = [
  ...['--model', flags.model, '--data', flags.data, '--shots', '16', '--seed', '1', '--iters', flags.iters],
  ...['--lr', '0.01', '--augment', 'none', '--epsilon', EPSILON, '--tau', '2', '--perturbation', 'per-sample'],
  ...['--batch-size', '32', '--chunk-size', '4', '--sync', 'local-delta'],
];

/** --faults picks some (a run split over processes; the table's Δ needs the fault-free mean in the same output). */
const faults: readonly (readonly [string, Tamper | null, string])[] = (
  [
    ['none', null, 'none'],
    ['sums × (−10)', scaledBy(-10), 'scaled'],
    ['noise N(0, 1)', noise(1), 'noise'],
  ] as const
).filter(([, , key]) => flags.faults.split(',').includes(key));
const rules = (
  [
    ['mean', []],
    ['median', []],
    ['trimmed-mean', ['--trim', '1']],
  ] as const
).filter(([rule]) => flags.rules.split(',').includes(rule));

interface Row {
  readonly fault: string;
  readonly aggregate: string;
  readonly clean: number;
  readonly pgd: number;
  /** ‖adapter − fault-free adapter‖ / ‖fault-free adapter − initial adapter‖: how far the fault moved it, in units of what training moved it (null without the fault-free run in --out) */
  readonly off: number | null;
  readonly train_seconds: number;
}

/** Every factor of the adapter in DIR, in tensor-name order. */
function adapterVector(dir: string): Float64Array {
  const tensors = [...readSafetensors(readFileSync(join(dir, 'adapter_model.safetensors')), 'adapter_model.safetensors')].sort(([a], [b]) => (a < b ? -1 : 1));
  return Float64Array.from(tensors.flatMap(([, t]) => [...t.data]));
}
const distance = (a: Float64Array, b: Float64Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));

/** The initial adapter (0 steps) and the fault-free one, once both are in --out. */
function offFromFaultFree(dir: string): number | null {
  const reference = join(flags.out, 'mean-none');
  if (!existsSync(join(reference, 'adapter_model.safetensors'))) return null;
  const faultFree = adapterVector(reference);
  return distance(adapterVector(dir), faultFree) / distance(faultFree, adapterVector(join(flags.out, 'initial')));
}

function accuracy(adapter: string, attack: 'none' | 'pgd'): number {
  const limit = flags['eval-limit'] ? ['--limit', flags['eval-limit']] : [];
  const out = execFileSync(process.execPath, ['bin/advclip.mjs', 'eval', '--model', flags.model, '--data', flags.data, '--adapter', adapter, '--attack', attack, '--epsilon', EPSILON, ...limit, '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return (JSON.parse(out) as { accuracy: number }).accuracy;
}

/** Fault-free mean (the reference) and every Byzantine run first; the robust rules without a fault last. */
const faultFree = faults.some(([, tamper]) => tamper === null);
const runs = [
  ...(faultFree ? [['none', null, rules[0]] as const] : []),
  ...faults.flatMap(([fault, tamper]) => (tamper ? rules.map((rule) => [fault, tamper, rule] as const) : [])),
  ...(faultFree ? rules.slice(1).map((rule) => ['none', null, rule] as const) : []),
];

const pct = (x: number) => (100 * x).toFixed(1);
const gap = (x: number, ref: number | undefined) => (ref === undefined ? '–' : `${x >= ref ? '+' : '−'}${Math.abs(100 * (x - ref)).toFixed(1)}`);
const rows: Row[] = [];

/** The table so far (written after every run: a long run interrupted keeps what it measured). */
function write(): string {
  const reference = rows.find((r) => r.fault === 'none' && r.aggregate === 'mean');
  const table = [
    `${flags.iters} steps, ${WORKERS} workers (1 Byzantine), ${flags.data}, ${flags.model}; accuracy (%) on the test split${flags['eval-limit'] ? ` (${flags['eval-limit']} images)` : ''}, PGD-10 at ε = ${EPSILON}; Δ against fault-free mean`,
    '',
    '| Byzantine worker | aggregate | clean | Δ clean | PGD | Δ PGD | adapter off fault-free (× training’s move) |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.fault} | ${r.aggregate} | ${pct(r.clean)} | ${gap(r.clean, reference?.clean)} | ${pct(r.pgd)} | ${gap(r.pgd, reference?.pgd)} | ${r.off === null ? '–' : r.off.toFixed(2)} |`),
  ].join('\n');
  writeFileSync(join(flags.out, 'byzantine.json'), JSON.stringify({ train: TRAIN, workers: WORKERS, rows }, null, 2));
  writeFileSync(join(flags.out, 'byzantine.md'), `${table}\n`);
  return table;
}

let table = '';
await runCluster([...TRAIN, '--iters', '0'], join(flags.out, 'initial'), { workers: 1 });
for (const [fault, tamper, [rule, extra]] of runs) {
  const out = join(flags.out, `${rule}-${fault.replace(/[^a-z0-9]+/gi, '_')}`);
  mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  await runCluster([...TRAIN, '--aggregate', rule, ...extra], out, { workers: WORKERS, prepare: (i, honest) => (tamper && i === BYZANTINE ? byzantine(honest, tamper) : honest) });
  const row = { fault, aggregate: rule, clean: accuracy(out, 'none'), pgd: accuracy(out, 'pgd'), off: offFromFaultFree(out), train_seconds: Math.round((performance.now() - t0) / 1000) };
  rows.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
  table = write();
}
process.stdout.write(flags.json ? `${JSON.stringify({ rows })}\n` : `${table}\n`);
