/**
 * A section of `npm run bench`: one idea, measured in child processes where
 * it needs its own backend or a clean process, returning its figures and the
 * raw numbers behind them. Later sections read what earlier ones measured
 * (the sgemm peak, our step time) through `shared`. A timed step
 * (bench-step.ts) answers a StepRun or a StepFailure.
 */
import type { Figure } from './figure.ts';

export interface StepRun {
  readonly ok: true;
  readonly secondsPerStep: number;
  readonly backend: string;
  readonly workers: number;
  /** the whole JSON object bench step printed */
  readonly json: Record<string, unknown>;
  readonly command: string;
}

export interface StepFailure {
  readonly ok: false;
  readonly why: string;
  readonly command: string;
}

export interface StepFigure {
  readonly seconds: number;
  readonly how: string;
}

export interface Shared {
  /** NumPy/OpenBLAS sgemm GFLOP/s by thread count (best over sizes) */
  sgemmPeak?: { readonly 1?: number; readonly 2?: number };
  /** seconds per ViT-B/32 step (batch 32, τ 2) on native using both cores, measured by the step section */
  ourVitB32Step?: StepFigure;
  /** the distributed section's 2-worker step (cluster-step.ts), run by the PyTorch section right after the anchor */
  twoWorkers?: StepRun | StepFailure;
}

export interface BenchContext {
  readonly quick: boolean;
  /** repository root */
  readonly repo: string;
  /** progress, to stderr */
  readonly log: (message: string) => void;
  readonly shared: Shared;
}

export interface SectionOutcome {
  readonly figures: Figure[];
  readonly details: Record<string, unknown>;
}

export interface Section {
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<SectionOutcome>;
}
