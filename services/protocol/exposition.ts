/**
 * A reader of the Prometheus text exposition format (version 0.0.4), enough
 * to check what a `/metrics` endpoint really serves: families with their
 * TYPE and HELP, and samples with labels and values.
 */
import { invalidArgument } from '../core/errors.ts';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The series name, e.g. `advclip_step_seconds_bucket` for a histogram family. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: Sample[];
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL_PAIR = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;
const SUFFIXED = /^(.*)_(bucket|sum|count|total|created)$/;

/** Families by name; samples of `x_bucket`/`x_sum`/`x_count` belong to family `x`. */
export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };

  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line);
    if (meta) {
      const [, keyword, name, rest] = meta;
      const f = family(name);
      if (keyword === 'TYPE') (f as { type: MetricType }).type = rest as MetricType;
      else (f as { help: string }).help = rest;
      return;
    }
    if (line.startsWith('#')) return;
    const m = SAMPLE_LINE.exec(line);
    if (!m) throw invalidArgument(`exposition line ${i + 1}: cannot parse ${JSON.stringify(raw)}`);
    const [, name, labelText, valueText] = m;
    const owner = familyOf(name, families);
    family(owner).samples.push({ name, labels: parseLabels(labelText ?? '', i + 1), value: parseValue(valueText, i + 1) });
  });
  return families;
}

function familyOf(seriesName: string, families: Map<string, MetricFamily>): string {
  if (families.has(seriesName)) return seriesName;
  const m = SUFFIXED.exec(seriesName);
  return m && families.has(m[1]) ? m[1] : seriesName;
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL_PAIR.lastIndex = 0;
  while (LABEL_PAIR.lastIndex < text.length) {
    const m = LABEL_PAIR.exec(text);
    if (!m) throw invalidArgument(`exposition line ${line}: bad labels {${text}}`);
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** Case-insensitive like Prometheus' own parser (Go ParseFloat): prom-client writes `Nan`. */
function parseValue(text: string, line: number): number {
  switch (text.toLowerCase()) {
    case 'nan':
      return NaN;
    case '+inf':
    case 'inf':
      return Infinity;
    case '-inf':
      return -Infinity;
  }
  const v = Number(text);
  if (Number.isNaN(v)) throw invalidArgument(`exposition line ${line}: bad value ${text}`);
  return v;
}
