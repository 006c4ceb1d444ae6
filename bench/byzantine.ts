/**
 * Robust aggregation on the shipped model: one run per case of
 * `advclip coordinator --sync local-delta` with 5 in-process workers, the
 * 5th Byzantine in the faulty cases (its sums and local δ scaled by −10 or
 * replaced by noise, test/helpers/byzantine.ts). Writes one adapter per
 * case under OUT; evaluate each with `advclip eval` (the note's commands).
 *
 *   node --import tsx bench/byzantine.ts OUT [case…]   (cases: see CASES)
 */
import { byzantine, noise, scaledBy, type Tamper } from '../test/helpers/byzantine.ts';
import { runCluster } from '../test/integration/cluster-harness.ts';

export const BYZANTINE_ARGS = [
  ...['--model', 'models/clip-small', '--data', 'data/shapes-colours', '--shots', '4', '--iters', '30'],
  ...['--batch-size', '20', '--chunk-size', '4', '--lr', '1e-2', '--augment', 'none', '--epsilon', '4/255', '--sync', 'local-delta'],
];

const CASES: Readonly<Record<string, { rule: string; tamper: Tamper | null }>> = {
  'fault-free-mean': { rule: 'mean', tamper: null },
  'fault-free-median': { rule: 'median', tamper: null },
  'scaled-mean': { rule: 'mean', tamper: scaledBy(-10) },
  'scaled-median': { rule: 'median', tamper: scaledBy(-10) },
  'scaled-trimmed-mean': { rule: 'trimmed-mean', tamper: scaledBy(-10) },
  'noise-mean': { rule: 'mean', tamper: noise(1) },
  'noise-median': { rule: 'median', tamper: noise(1) },
  'noise-trimmed-mean': { rule: 'trimmed-mean', tamper: noise(1) },
};

const [out, ...names] = process.argv.slice(2);
if (!out) throw new Error('usage: node --import tsx bench/byzantine.ts OUT [case…]');
for (const name of names.length ? names : Object.keys(CASES)) {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}: one of ${Object.keys(CASES).join(', ')}`);
  const started = performance.now();
  await runCluster([...BYZANTINE_ARGS, '--aggregate', c.rule], `${out}/${name}`, { workers: 5, prepare: (i, honest) => (c.tamper && i === 4 ? byzantine(honest, c.tamper) : honest) });
  process.stdout.write(`${name}: ${out}/${name} in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
}
