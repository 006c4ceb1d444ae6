/**
 * Memory: RSS and tfjs' live tensors over 1000 training steps (200 with
 * --quick) of the tiny architecture in one process, sampled every 100 steps:
 * first, last and the slope per 1000 steps. Goal (issue 8): flat — the
 * tensor count must not grow at all; RSS should level off.
 */
import { failureOf, jsonLines, runChild } from './child.ts';
import { unavailable, type Figure } from './figure.ts';
import type { BenchContext, Section, SectionOutcome } from './section.ts';
import { slope } from './stats.ts';

const FLAT = { op: '<=', target: 0, on: 'value' } as const;

interface Sample {
  readonly step: number;
  readonly rss_mb: number;
  readonly heap_used_mb: number;
  readonly wasm_heap_mb: number;
  readonly num_tensors: number;
  readonly num_bytes: number;
  readonly seconds: number;
  readonly backend: string;
}

async function run(ctx: BenchContext): Promise<SectionOutcome> {
  const steps = ctx.quick ? 200 : 1000;
  const every = 100;
  const args = ['--expose-gc', '--import', 'tsx', 'bench/memory-child.ts', '--steps', String(steps), '--every', String(every)];
  ctx.log(`$ node ${args.join(' ')}`);
  const r = await runChild(process.execPath, args, { cwd: ctx.repo, timeoutMs: 15 * 60_000, label: 'memory', log: ctx.log });
  const samples = jsonLines(r.stdout) as unknown as Sample[];
  const label = `tiny arch, ${steps} steps in one process`;
  if (r.code !== 0 || samples.length < 2) return { figures: [unavailable('memory', label, '', failureOf(r))], details: { samples } };
  // the slope from step `every` on: the first step's allocations (caches, JIT, heap growth) are not a trend
  const trend = samples.filter((s) => s.step >= every);
  const perKilo = (f: (s: Sample) => number) => 1000 * slope(trend.map((s) => [s.step, f(s)] as const));
  const first = samples[0];
  const last = samples.at(-1)!;
  const note = `${samples[0].backend} backend, batch 4 in 2 chunks, τ 2, 5 prompts; sampled at steps ${samples.map((s) => s.step).join(', ')}; ${(last.seconds / steps * 1000).toFixed(0)} ms/step`;
  const figures: Figure[] = [
    { id: 'memory.num_tensors.first', label: `live tensors after step ${first.step} (${label})`, value: first.num_tensors, unit: 'tensors', note },
    { id: 'memory.num_tensors.last', label: `live tensors after step ${last.step}`, value: last.num_tensors, unit: 'tensors' },
    { id: 'memory.num_tensors.slope', label: `live tensors, slope from step ${every}`, value: perKilo((s) => s.num_tensors), unit: 'tensors/1000 steps', goal: FLAT },
    { id: 'memory.rss.first', label: `RSS after step ${first.step}`, value: first.rss_mb, unit: 'MB' },
    { id: 'memory.rss.last', label: `RSS after step ${last.step}`, value: last.rss_mb, unit: 'MB' },
    { id: 'memory.rss.slope', label: `RSS, slope from step ${every}`, value: perKilo((s) => s.rss_mb), unit: 'MB/1000 steps' },
    { id: 'memory.heap_used.slope', label: `of which V8 heap used (${last.heap_used_mb.toFixed(0)} MB at the end), slope`, value: perKilo((s) => s.heap_used_mb), unit: 'MB/1000 steps' },
    { id: 'memory.wasm_heap.slope', label: `of which the wasm heap (${last.wasm_heap_mb.toFixed(0)} MB at the end), slope`, value: perKilo((s) => s.wasm_heap_mb), unit: 'MB/1000 steps' },
  ];
  return { figures, details: { steps, every, samples } };
}

export const memorySection: Section = { name: 'memory', title: 'Memory over many steps (tiny architecture, in-process trainer)', run };
