/**
 * The step of the distributed figures, in or out of local worker processes:
 * ViT-B/32 at the anchor's configuration (the tiny architecture with --quick),
 * every process computing with one native thread, so in-process, 1 worker
 * and 2 workers differ only in the distribution. The PyTorch section runs
 * its 2-worker case right after the anchor; the distributed section reuses it.
 */
import { benchStep } from './bench-step.ts';
import type { BenchContext, StepFailure, StepRun } from './section.ts';

export const ONE_THREAD = { ADVCLIP_NATIVE_THREADS: '1' } as const;
export const CLUSTER_BATCH = 32;

/** --quick cannot afford three real-size runs at one thread each: the tiny architecture shows the messaging overhead at its worst */
export const clusterArch = (ctx: BenchContext): string => (ctx.quick ? 'tiny' : 'vit-b-32');

export const clusterLabel = (ctx: BenchContext): string => `${clusterArch(ctx)}, batch ${CLUSTER_BATCH} in 4 chunks, τ 2, native 1 thread per process`;

/** workers: null = in-process */
export function clusterStep(ctx: BenchContext, workers: number | null): Promise<StepRun | StepFailure> {
  const args = ['--arch', clusterArch(ctx), '--batch', String(CLUSTER_BATCH), '--tau', '2', '--steps', ctx.quick ? '3' : '2', '--chunk-size', '8', '--backend', 'native'];
  return benchStep(ctx, {
    args: workers === null ? args : [...args, '--workers', String(workers)],
    env: ONE_THREAD,
    timeoutMs: 20 * 60_000,
    label: workers === null ? 'in-process' : `workers ${workers}`,
  });
}
