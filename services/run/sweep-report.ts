/**
 * A sweep's results: `sweep.json` (every run: its flags, what it reports,
 * its adapter's SHA-256) and `sweep.md`, the paper's tables: one row per
 * data set × shots (and any other varied flag but the seed), one column per
 * method, each cell the mean ± standard deviation over the seeds.
 */
import type { FlagValue } from './sweep-grid.ts';

/** What one run of the sweep gave (train.json's figures), or why it did not. */
export interface RunOutcome {
  readonly id: string;
  readonly status: 'done' | 'failed' | 'pending';
  readonly flags: Readonly<Record<string, FlagValue>>;
  readonly varied: Readonly<Record<string, FlagValue>>;
  /** the run's adapter directory */
  readonly out: string;
  readonly adapterSha256?: string;
  readonly finalLoss?: number;
  /** the run's last evaluation during training */
  readonly evaluation?: { readonly attack: string; readonly epsilon: number; readonly n: number; readonly accuracy: number };
  /** the run was finished before this invocation (resumed sweep) */
  readonly skipped?: boolean;
  readonly seconds?: number;
  readonly error?: string;
}

/** Mean and sample standard deviation (n − 1; 0 for one value). */
export function meanStd(values: readonly number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  if (!n) return { mean: NaN, std: NaN, n };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

const cell = (values: readonly number[], digits: number): string => {
  if (!values.length) return '—';
  const { mean, std, n } = meanStd(values);
  return n > 1 ? `${mean.toFixed(digits)} ± ${std.toFixed(digits)}` : mean.toFixed(digits);
};

/** The flags a table's rows are made of: every varied one but the seed and the method. */
const rowKeys = (runs: readonly RunOutcome[]): string[] => [...new Set(runs.flatMap((r) => Object.keys(r.varied)))].filter((k) => k !== 'seed' && k !== 'method');

/** A row's label for a flag's value: a data set by its folder. */
const label = (key: string, value: FlagValue | undefined): string => (value === undefined ? '' : key === 'data' ? String(value).replace(/[\\/]+$/, '').split(/[\\/]/).pop()! : String(value));

/**
 * The sweep's tables in Markdown: accuracy (%) of the runs' last evaluation,
 * per attack and ε, and the final training loss; mean ± std over the seeds
 * of the runs that finished.
 */
export function sweepTables(runs: readonly RunOutcome[]): string {
  const done = runs.filter((r) => r.status === 'done');
  const keys = rowKeys(runs);
  const methods = [...new Set(runs.map((r) => String(r.flags.method ?? 'advclip-lora')))];
  const rowOf = (r: RunOutcome) => keys.map((k) => label(k, r.varied[k])).join('\u0000');
  const rows = [...new Set(runs.map(rowOf))];
  const table = (title: string, pick: (r: RunOutcome) => number | undefined, digits: number): string => {
    const header = `| ${[...keys, ...methods].join(' | ')} |`;
    const rule = `|${[...keys, ...methods].map(() => '---').join('|')}|`;
    const lines = rows.map((row) => {
      const cells = methods.map((m) =>
        cell(
          done.filter((r) => rowOf(r) === row && String(r.flags.method ?? 'advclip-lora') === m).flatMap((r) => {
            const v = pick(r);
            return v === undefined || !Number.isFinite(v) ? [] : [v];
          }),
          digits,
        ),
      );
      return `| ${[...(keys.length ? row.split('\u0000') : []), ...cells].join(' | ')} |`;
    });
    return `### ${title}\n\n${header}\n${rule}\n${lines.join('\n')}\n`;
  };
  const attacks = [...new Set(done.flatMap((r) => (r.evaluation ? [`${r.evaluation.attack}@${r.evaluation.epsilon}`] : [])))];
  const sections = attacks.map((a) => {
    const [attack, epsilon] = a.split('@');
    return table(`Accuracy (%) under ${attack}, ε = ${formatEpsilon(Number(epsilon))}`, (r) => (r.evaluation && `${r.evaluation.attack}@${r.evaluation.epsilon}` === a ? 100 * r.evaluation.accuracy : undefined), 2);
  });
  sections.push(table('Final training loss', (r) => r.finalLoss, 4));
  const seeds = new Set(runs.map((r) => String(r.flags.seed ?? '')));
  const failed = runs.filter((r) => r.status !== 'done');
  return [
    '# Sweep results',
    '',
    `${done.length} of ${runs.length} runs finished; each cell is the mean ± standard deviation over ${seeds.size} seed${seeds.size === 1 ? '' : 's'} (sample std, n − 1).`,
    ...(failed.length ? ['', `Not finished: ${failed.map((r) => `${r.id} (${r.status}${r.error ? `: ${r.error}` : ''})`).join(', ')}.`] : []),
    '',
    ...sections,
  ].join('\n');
}

/** ε as the paper writes it: k/255 when it is one. */
function formatEpsilon(epsilon: number): string {
  const k = epsilon * 255;
  return Math.abs(k - Math.round(k)) < 1e-6 ? `${Math.round(k)}/255` : String(epsilon);
}

/** sweep.json: the runs in grid order with their flags and figures. */
export function sweepJson(runs: readonly RunOutcome[], extra: Record<string, unknown>): Record<string, unknown> {
  return {
    ...extra,
    runs: runs.map((r) => ({
      id: r.id,
      status: r.status,
      ...(r.skipped ? { skipped: true } : {}),
      flags: r.flags,
      varied: r.varied,
      out: r.out,
      adapter_sha256: r.adapterSha256 ?? null,
      final_loss: r.finalLoss ?? null,
      evaluation: r.evaluation ?? null,
      seconds: r.seconds ?? null,
      ...(r.error ? { error: r.error } : {}),
    })),
  };
}
