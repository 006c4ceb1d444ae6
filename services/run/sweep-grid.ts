/**
 * A sweep's grid file (advclip sweep --grid GRID.yaml): `base:` holds
 * training flags every run shares, `grid:` lists values of flags that vary
 * (data, shots, seed, method, or any other training flag), under the flag
 * names and units of `advclip train`. The runs are the cartesian product of
 * the grid's lists, the first key outermost; each run's id is a stable
 * short name made of its varied values (`caltech_shots1_seed2_advclip-lora`).
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { invalidArgument } from '../core/errors.ts';

export type FlagValue = string | number | boolean;

export interface Grid {
  readonly base: Readonly<Record<string, FlagValue>>;
  /** flag → its values, in file order */
  readonly grid: ReadonlyArray<readonly [string, readonly FlagValue[]]>;
}

/** One run of a sweep: its id, every flag value it has (base and varied), and the varied ones alone. */
export interface GridRun {
  readonly id: string;
  readonly flags: Readonly<Record<string, FlagValue>>;
  readonly varied: Readonly<Record<string, FlagValue>>;
}

/** Flags a grid may not set: each run's outputs and the sweep's process are the sweep's. */
export const SWEEP_OWNED_FLAGS = ['out', 'json', 'backend', 'nats', 'metrics-port', 'metrics-host', 'checkpoint-dir', 'config'] as const;

const isFlagValue = (v: unknown): v is FlagValue => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

/** The grid in a YAML text; `where` names the file in errors. */
export function parseGrid(text: string, where: string): Grid {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw invalidArgument(`${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalidArgument(`${where}: expected a mapping with base: and grid:`);
  const { base = {}, grid, ...rest } = doc as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length) throw invalidArgument(`${where}: unknown key "${extra[0]}" (a grid file has base: and grid:)`);
  if (!base || typeof base !== 'object' || Array.isArray(base)) throw invalidArgument(`${where}: base: must be a mapping of training flags to values`);
  if (!grid || typeof grid !== 'object' || Array.isArray(grid)) throw invalidArgument(`${where}: grid: must be a mapping of training flags to lists of values`);
  const checkFlag = (key: string, at: string) => {
    if ((SWEEP_OWNED_FLAGS as readonly string[]).includes(key)) throw invalidArgument(`${where}: ${at}${key} is set by advclip sweep itself, not by the grid`);
  };
  const baseValues: Record<string, FlagValue> = {};
  for (const [key, value] of Object.entries(base)) {
    checkFlag(key, 'base.');
    if (!isFlagValue(value)) throw invalidArgument(`${where}: base.${key} must be a string, number or boolean`);
    baseValues[key] = value;
  }
  const lists: [string, FlagValue[]][] = [];
  for (const [key, values] of Object.entries(grid)) {
    checkFlag(key, 'grid.');
    const list = Array.isArray(values) ? values : [values];
    if (!list.length) throw invalidArgument(`${where}: grid.${key} is an empty list: the sweep would have no runs`);
    list.forEach((v, i) => {
      if (!isFlagValue(v)) throw invalidArgument(`${where}: grid.${key}[${i}] must be a string, number or boolean`);
    });
    if (new Set(list.map(String)).size !== list.length) throw invalidArgument(`${where}: grid.${key} lists a value twice`);
    if (key in baseValues) throw invalidArgument(`${where}: ${key} is in both base: and grid:`);
    lists.push([key, list as FlagValue[]]);
  }
  if (!lists.length) throw invalidArgument(`${where}: grid: is empty (one key with one value is a sweep of one run)`);
  return { base: baseValues, grid: lists };
}

/** Flags whose value alone names it in a run id (a data set's folder, a method). */
const BARE_VALUE_FLAGS = new Set(['data', 'method', 'model']);

/** Flags whose values are paths: a run id takes their last component. */
const PATH_FLAGS = new Set(['data', 'model', 'split-file']);

/** A value as part of a run id: a path by its last component, characters outside [A-Za-z0-9.-] as '-'. */
function idPart(key: string, value: FlagValue): string {
  const text = PATH_FLAGS.has(key) ? basename(String(value).replace(/[\\/]+$/, '')) : String(value);
  const clean = text.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
  if (typeof value === 'boolean') return value ? key : `no-${key}`;
  return BARE_VALUE_FLAGS.has(key) ? clean : `${key.replace(/[^A-Za-z0-9]+/g, '')}${clean}`;
}

/** The runs of a grid, in order (first key outermost), with ids unique and stable across invocations. */
export function expandGrid(g: Grid): GridRun[] {
  let points: Record<string, FlagValue>[] = [{}];
  for (const [key, values] of g.grid) points = points.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  const ids = points.map((p) => Object.entries(p).map(([k, v]) => idPart(k, v)).join('_'));
  const clash = new Set(ids.filter((id, i) => ids.indexOf(id) !== i));
  return points.map((varied, i) => {
    // two values with the same short form (data/a/x, data/b/x): the full values' hash tells them apart
    const id = clash.has(ids[i]) ? `${ids[i]}-${createHash('sha256').update(JSON.stringify(varied)).digest('hex').slice(0, 6)}` : ids[i];
    return { id: id.slice(0, 120), flags: { ...g.base, ...varied }, varied };
  });
}

/** A run's flags as a command line of `advclip train` flags (--flag=value; a true boolean as --flag, false left out). */
export function flagsAsArgv(flags: Readonly<Record<string, FlagValue>>): string[] {
  return Object.entries(flags).flatMap(([k, v]) => (typeof v === 'boolean' ? (v ? [`--${k}`] : []) : [`--${k}=${v}`]));
}
