/**
 * `npm run bench`: the performance figures of issue 8, each read as a ratio
 * measured in this one run (against the machine's sgemm peak, the in-process
 * step, one worker, PyTorch). Measures, never judges: a missed goal is
 * printed, not failed. Writes bench/results.json.
 *
 *   npm run bench [-- --quick] [-- --json] [-- --only kernel,step]
 *
 * --quick: smaller configurations, the whole suite in under 2 minutes on 2 cores.
 * --json:  one JSON object with every figure on stdout (progress stays on stderr;
 *          `npm run -s bench -- --json` also keeps npm's banner off stdout).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { broadcastSection } from './broadcast.ts';
import { distributedSection } from './distributed.ts';
import { unavailable, type Figure } from './figure.ts';
import { kernelSection } from './kernel.ts';
import { memorySection } from './memory.ts';
import type { BenchContext, Section } from './section.ts';
import { stepSection } from './step.ts';
import { renderTable } from './table.ts';
import { torchSection } from './torch.ts';

/**
 * In this order: the step reads the kernel's peak and ends with our native ViT-B/32 step; PyTorch runs
 * right after it, then our 2-worker step, which the distributed section reuses before its 1-worker and
 * in-process runs — neighbours in time are what a shared machine lets us compare.
 */
const SECTIONS: readonly Section[] = [kernelSection, stepSection, torchSection, distributedSection, broadcastSection, memorySection];

const USAGE = `usage: npm run bench [-- --quick] [-- --json] [-- --only SECTION,…]

  --quick   smaller configurations: the whole suite in under 2 minutes on 2 cores
  --json    one JSON object with every figure on stdout (progress on stderr)
  --only    run only these sections: ${SECTIONS.map((s) => s.name).join(', ')}

Prints each figure with its ratio and goal, and writes bench/results.json.`;

const log = (message: string) => process.stderr.write(`${message}\n`);
function parseFlags() {
  try {
    return parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, only: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } }).values;
  } catch (err) {
    log(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}
const values = parseFlags();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const ctx: BenchContext = { quick: values.quick!, repo, log, shared: {} };
const only = values.only?.split(',').map((s) => s.trim());
const unknown = only?.filter((n) => !SECTIONS.some((s) => s.name === n)) ?? [];
if (unknown.length) {
  log(`--only: unknown section ${unknown.join(', ')} (sections: ${SECTIONS.map((s) => s.name).join(', ')})`);
  process.exit(2);
}

function commit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

const started = performance.now();
const meta = {
  started_at: new Date().toISOString(),
  quick: ctx.quick,
  commit: commit(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  openblas_env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('OPENBLAS_'))),
  /** 1-minute load average before and after: other jobs on the machine skew every figure */
  load_before: loadavg()[0],
  load_after: NaN,
  seconds: NaN,
};

const sections: Record<string, { title: string; seconds: number; details: Record<string, unknown>; error?: string }> = {};
const printed: { title: string; figures: Figure[] }[] = [];
const figures: Figure[] = [];
for (const section of SECTIONS.filter((s) => !only || only.includes(s.name))) {
  log(`\n== ${section.title}${ctx.quick ? ' (quick)' : ''}`);
  const t0 = performance.now();
  let outcome;
  try {
    outcome = await section.run(ctx);
  } catch (err) {
    const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
    log(why);
    outcome = { figures: [unavailable(`${section.name}.error`, `${section.name}: the section failed`, '', why.split('\n')[0])], details: {}, error: why };
  }
  const seconds = (performance.now() - t0) / 1000;
  log(`   ${section.name}: ${seconds.toFixed(1)} s`);
  sections[section.name] = { title: section.title, seconds, details: outcome.details, ...('error' in outcome ? { error: String(outcome.error) } : {}) };
  printed.push({ title: section.title, figures: outcome.figures });
  figures.push(...outcome.figures);
}
meta.load_after = loadavg()[0];
meta.seconds = (performance.now() - started) / 1000;

const result = { meta, figures, sections };
writeFileSync(join(repo, 'bench', 'results.json'), JSON.stringify(result, null, 2) + '\n');
if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  process.stdout.write(renderTable(printed) + '\n');
  process.stdout.write(`\n${cpus().length} × ${meta.cpu}; load ${meta.load_before.toFixed(1)} → ${meta.load_after.toFixed(1)}; ${meta.seconds.toFixed(0)} s${ctx.quick ? ' (--quick)' : ''}; bench/results.json written\n`);
  if (Math.max(meta.load_before, meta.load_after) > meta.cores) {
    process.stdout.write('The machine was busy with other work (load above its core count): absolute figures are low; ratios compare runs of this same busy run.\n');
  }
}
