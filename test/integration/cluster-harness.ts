/**
 * A whole cluster in the test process: `serveTraining` (what `advclip
 * coordinator` runs) with in-process Workers built the way `advclip worker`
 * builds them, and `advclip train` as the reference. Everything started
 * here is closed before the run returns.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../services/core/backend.ts';
import type { Coordinator } from '../../services/coordinator/coordinator.ts';
import type { StepReport, TrainState } from '../../services/core/trainer.ts';
import { parseFlags } from '../../services/cli/args.ts';
import { coordinatorCommand, coordinatorRunFrom } from '../../services/cli/coordinator.ts';
import { createLogger } from '../../services/protocol/log.ts';
import { runTrain, trainCommand } from '../../services/cli/train.ts';
import { serveTraining } from '../../services/run/serve.ts';
import { workerSetupFrom } from '../../services/run/worker-setup.ts';
import { Worker, type RunPreparer } from '../../services/worker/worker.ts';

export const TINY = ['--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--shots', '2', '--iters', '3', '--batch-size', '8', '--chunk-size', '2'];

export const quiet = createLogger({ json: true, write: () => undefined });

export const scratch = (): { dir: string; done(): void } => {
  const dir = mkdtempSync(join(tmpdir(), 'advclip-cluster-test-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
};

export const adapterBytes = (dir: string): Buffer => readFileSync(join(dir, 'adapter_model.safetensors'));

/** `advclip train ARGS --out DIR` in this process; the adapter bytes. */
export async function trainReference(args: readonly string[], out: string): Promise<Buffer> {
  await runTrain(parseFlags(trainCommand, [...args, '--out', out]), [], quiet);
  return adapterBytes(out);
}

/** An in-process worker as `advclip worker` builds it; `prepare` wraps its setup (a misbehaving worker of a test). */
export async function startWorker(coordinator: Coordinator, name: string, prepare: (honest: RunPreparer) => RunPreparer = (p) => p): Promise<Worker> {
  const backend = await initBackend();
  return Worker.start({
    coordinator: coordinator.address,
    security: { mode: 'insecure' },
    name,
    capabilities: { backend: backend.name, device: 'cpu', cores: 1, modelSha256: '', version: 'test' },
    prepare: prepare(workerSetupFrom({}, backend, quiet)),
    metrics: { port: 0 },
    log: quiet,
  });
}

export interface ClusterRun {
  readonly adapter: Buffer;
  readonly workers: readonly Worker[];
  readonly summary: Record<string, unknown>;
}

export interface ClusterRunOptions {
  readonly workers: number;
  /** wraps worker i's setup (0-based) */
  readonly prepare?: (i: number, honest: RunPreparer) => RunPreparer;
  /** before the workers start */
  readonly onListening?: (coordinator: Coordinator) => void;
  readonly onStep?: (report: StepReport, state: TrainState, coordinator: Coordinator, workers: Worker[]) => Promise<void> | void;
}

/** `advclip coordinator ARGS` with `workers` in-process workers (insecure loopback, any free ports). */
export async function runCluster(args: readonly string[], out: string, options: ClusterRunOptions): Promise<ClusterRun> {
  const flags = coordinatorRunFrom(parseFlags(coordinatorCommand, [...args, '--out', out, '--listen', '127.0.0.1:0', '--metrics-port', '0', '--insecure']));
  const workers: Worker[] = [];
  try {
    const summary = await serveTraining(flags, quiet, {
      onListening: async (c) => {
        options.onListening?.(c);
        for (let i = 0; i < options.workers; i++) workers.push(await startWorker(c, `w${i + 1}`, (p) => options.prepare?.(i, p) ?? p));
        while (c.registry.live().length < options.workers) await c.registry.nextEvent();
      },
      onStep: (r, s, c) => options.onStep?.(r, s, c, workers),
    });
    await Promise.all(workers.map((w) => w.done));
    return { adapter: adapterBytes(out), workers, summary: summary as unknown as Record<string, unknown> };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}
