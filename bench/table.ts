/** The suite's closing printout: one row per figure, grouped by section, with ratio and goal. */
import { goalMet, type Figure } from './figure.ts';

const num = (x: number | null | undefined, unit = ''): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3;
  return `${x.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
};

/** bytes in the largest decimal unit that leaves at least 1 (159586 → "160 kB") */
function bytesText(x: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(x) >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return num(x, units[i]);
}

const valueText = (f: Figure): string => (f.value === null ? 'n/a' : f.unit === 'bytes' ? bytesText(f.value) : num(f.value, f.unit));

function goalText(f: Figure): string {
  if (!f.goal) return '';
  const unit = f.goal.on === 'ratio' ? '×' : f.unit;
  const target = `${f.goal.op === '<=' ? '≤' : '≥'} ${f.goal.target}${unit === '×' ? '×' : ` ${unit}`}`;
  const met = goalMet(f);
  return `${f.goal.on === 'ratio' ? 'ratio ' : ''}${target}${met === null ? '' : met ? '  (met)' : '  (not met)'}`;
}

const pad = (s: string, n: number) => s + ' '.repeat(Math.max(0, n - [...s].length));

interface Row {
  readonly label: string;
  readonly value: string;
  readonly ratio: string;
  readonly goal: string;
  readonly note: string;
}

const rowOf = (f: Figure): Row => ({
  label: f.label,
  value: valueText(f),
  ratio: f.ratio ? `${num(f.ratio.value)}× ${f.ratio.of}` : '',
  goal: goalText(f),
  note: f.note ?? '',
});

export function renderTable(sections: readonly { title: string; figures: readonly Figure[] }[]): string {
  const grouped = sections.map((s) => ({ title: s.title, rows: s.figures.map(rowOf) }));
  const all = grouped.flatMap((g) => g.rows);
  const width = (k: keyof Row, min: number) => Math.max(min, ...all.map((r) => [...r[k]].length));
  const w = { label: width('label', 6), value: width('value', 5), ratio: width('ratio', 5), goal: width('goal', 4) };
  const line = (a: string, b: string, c: string, d: string) => `${pad(a, w.label)}  ${pad(b, w.value)}  ${pad(c, w.ratio)}  ${pad(d, w.goal)}`.trimEnd();
  const out: string[] = [line('Figure', 'Value', 'Ratio', 'Goal'), '-'.repeat(w.label + w.value + w.ratio + w.goal + 6)];
  for (const g of grouped) {
    out.push('', `## ${g.title}`);
    for (const r of g.rows) {
      out.push(line(r.label, r.value, r.ratio, r.goal));
      if (r.note) out.push(`    ${r.note}`);
    }
  }
  return out.join('\n');
}
