/**
 * Flags of the `advclip` commands: one table per command gives each flag's
 * type, default and help, so parsing, `--help` and config files agree.
 * Accepts `--flag value` and `--flag=value`; list flags repeat; a YAML
 * `--config FILE` supplies defaults under the flags' long names.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { AdvclipError, invalidArgument } from '../core/errors.ts';

/**
 * A command line that cannot be read: an unknown flag or sub-command, a
 * flag without its value, a required flag missing. `advclip` exits 2 for it
 * (1 stays for everything that fails once the command runs, bad values too).
 */
export class UsageError extends AdvclipError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
    this.name = 'UsageError';
  }
}

export type FlagType = 'string' | 'number' | 'int' | 'boolean' | 'list' | 'fraction';

export interface FlagSpec {
  readonly type: FlagType;
  readonly help: string;
  readonly default?: string | number | boolean;
  /** value placeholder for help, e.g. DIR */
  readonly arg?: string;
  readonly choices?: readonly string[];
  readonly required?: boolean;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly flags: FlagTable;
  /** positional sub-commands it takes (e.g. `bench step`) */
  readonly subcommands?: readonly string[];
}

export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

/** `1/255`, `0.5/255` or a decimal */
export function parseFraction(text: string, flag: string): number {
  const m = /^\s*(-?[0-9]*\.?[0-9]+(?:e-?\d+)?)\s*(?:\/\s*([0-9]*\.?[0-9]+))?\s*$/i.exec(text);
  const value = m ? Number(m[1]) / (m[2] ? Number(m[2]) : 1) : NaN;
  if (!Number.isFinite(value)) throw invalidArgument(`--${flag}: "${text}" is not a number or a fraction like 1/255`);
  return value;
}

function convert(flag: string, spec: FlagSpec, raw: unknown): FlagValues[string] {
  if (raw === undefined) return undefined;
  if (spec.type === 'boolean') return raw === true || raw === 'true';
  if (spec.type === 'list') return (Array.isArray(raw) ? raw : [raw]).map(String);
  const text = String(raw);
  if (spec.choices && !spec.choices.includes(text)) throw invalidArgument(`--${flag} must be one of ${spec.choices.join('|')}, got "${text}"`);
  switch (spec.type) {
    case 'string':
      return text;
    case 'fraction':
      return parseFraction(text, flag);
    case 'number':
    case 'int': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n))) {
        throw invalidArgument(`--${flag} must be ${spec.type === 'int' ? 'an integer' : 'a number'}, got "${text}"`);
      }
      return n;
    }
  }
}

const valueFlag = (command: CommandSpec, token: string): boolean => {
  const spec = token.startsWith('--') ? command.flags[token.slice(2)] : undefined;
  return !!spec && spec.type !== 'boolean';
};

/** Parses argv for a command; `{help: true}` when --help was given. */
export function parseFlags(command: CommandSpec, argv: readonly string[]): FlagValues & { help?: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' }, config: { type: 'string' } };
  for (const [name, spec] of Object.entries(command.flags)) {
    options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string', multiple: spec.type === 'list' };
  }
  // `--epsilon -1` would read -1 as an option: glue a negative number to the flag that takes a value
  const args = argv.flatMap((a, i) => (i > 0 && /^-[0-9.]/.test(a) && valueFlag(command, argv[i - 1]) ? [] : /^--[^=]+$/.test(a) && valueFlag(command, a) && /^-[0-9.]/.test(argv[i + 1] ?? '') ? [`${a}=${argv[i + 1]}`] : [a]));
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: !!command.subcommands, strict: true });
  } catch (err) {
    throw new UsageError(`${command.name}: ${(err as Error).message.split('\n')[0]} (see advclip ${command.name} --help)`);
  }
  const given = parsed.values as Record<string, unknown>;
  if (given.help) return { help: true };
  for (const p of parsed.positionals) {
    if (!command.subcommands?.includes(p)) throw new UsageError(`advclip ${command.name}: unknown sub-command "${p}" (expected ${command.subcommands?.join('|') ?? 'none'})`);
  }
  const fromFile = typeof given.config === 'string' ? readConfigFile(given.config, command) : {};
  const out: FlagValues = {};
  for (const [name, spec] of Object.entries(command.flags)) {
    const raw = given[name] ?? fromFile[name] ?? spec.default;
    out[name] = convert(name, spec, raw);
    if (spec.required && out[name] === undefined) throw new UsageError(`advclip ${command.name}: --${name} is required (see --help)`);
  }
  return out;
}

function readConfigFile(path: string, command: CommandSpec): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw invalidArgument(`--config ${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw invalidArgument(`--config ${path}: expected a mapping of flag names to values`);
  const known = Object.keys(command.flags);
  for (const key of Object.keys(doc)) {
    if (!known.includes(key)) throw invalidArgument(`--config ${path}: "${key}" is not a flag of advclip ${command.name}`);
  }
  return doc as Record<string, unknown>;
}

/** A fraction's default as it is written (1/255), other defaults as they are. */
function shownDefault(spec: FlagSpec): string {
  if (spec.type !== 'fraction' || typeof spec.default !== 'number') return String(spec.default);
  const per255 = spec.default * 255;
  return Math.abs(per255 - Math.round(per255 * 1000) / 1000) < 1e-9 ? `${Math.round(per255 * 1000) / 1000}/255` : String(spec.default);
}

export function helpText(command: CommandSpec): string {
  const rows = Object.entries(command.flags).map(([name, spec]) => {
    const left = `  --${name}${spec.type === 'boolean' ? '' : ` ${spec.arg ?? (spec.choices ? spec.choices.join('|') : spec.type.toUpperCase())}`}`;
    const extra = [spec.required ? 'required' : null, spec.default !== undefined && spec.type !== 'boolean' ? `default ${shownDefault(spec)}` : null, spec.type === 'list' ? 'repeatable' : null]
      .filter(Boolean)
      .join(', ');
    return `${left.padEnd(34)} ${spec.help}${extra ? ` (${extra})` : ''}`;
  });
  rows.push(`${'  --config FILE'.padEnd(34)} YAML file of flag values (flags on the command line win)`);
  rows.push(`${'  -h, --help'.padEnd(34)} show this help`);
  return `${command.summary}\n\nusage: ${command.usage}\n\n${rows.join('\n')}\n`;
}

/** The values of some flags in command-line order, interleaved (e.g. --text and --input-ids). */
export function orderedValues(argv: readonly string[], names: readonly string[]): { name: string; value: string }[] {
  const options = Object.fromEntries(names.map((n) => [n, { type: 'string' as const, multiple: true }]));
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  return (tokens ?? []).flatMap((t) => (t.kind === 'option' && names.includes(t.name) && typeof t.value === 'string' ? [{ name: t.name, value: t.value }] : []));
}
