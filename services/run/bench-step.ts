/**
 * The step benchmark (`advclip bench step`): AdvCLIP-LoRA steps of the
 * synthetic run (synthetic-run.ts) timed after one warm-up step, in this
 * process on random weights, or through a local cluster of worker
 * processes on a throwaway model directory, with what the coordinator
 * counted on the wire.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { StepCosts } from '../coordinator/coordinator.ts';
import { DEFAULT_DEADLINE } from '../coordinator/remote-executor.ts';
import type { BackendChoice } from '../core/backend.ts';
import { ClipModel } from '../core/clip.ts';
import type { ClipConfig } from '../core/clip-config.ts';
import { invalidArgument } from '../core/errors.ts';
import { localExecutor } from '../core/local-executor.ts';
import { initLora, trainableParameterCount } from '../core/lora.ts';
import { randomClipWeights } from '../core/presets.ts';
import { ShardComputer } from '../core/shard.ts';
import type { TrainSpec } from '../core/train-spec.ts';
import { initTrainState, trainStep } from '../core/trainer.ts';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/grpc-options.ts';
import type { Logger } from '../protocol/log.ts';
import { explicitTransposeFor } from './backend.ts';
import { trainOnLocalCluster } from './local-cluster.ts';
import { parseRunSpec } from './spec.ts';
import { benchInputs, writeSyntheticRun } from './synthetic-run.ts';

export interface TimedSteps {
  /** seconds of each measured step */
  readonly times: readonly number[];
  /** what computed them */
  readonly backend: string;
  /** more fields of the benchmark's JSON */
  readonly extra: Record<string, unknown>;
}

/** `spec.iters - 1` steps timed in this process after a warm-up step. */
export async function timeStepsInProcess(config: ClipConfig, spec: TrainSpec, promptCount: number, backend: BackendChoice, log: Logger): Promise<TimedSteps> {
  const model = ClipModel.fromWeights(config, randomClipWeights(config, 1), { explicitTranspose: explicitTransposeFor(backend) });
  const { prompts, source } = benchInputs(config, spec.batchSize, promptCount);
  const executor = localExecutor(new ShardComputer(model, spec, prompts, source));
  const lora = initLora(config, spec.lora, spec.seed);
  const state = initTrainState(spec, lora);
  const times: number[] = [];
  for (let i = 0; i < spec.iters; i++) {
    const t0 = performance.now();
    await trainStep(state, spec, spec.batchSize, executor.execute);
    const seconds = (performance.now() - t0) / 1000;
    if (i > 0) times.push(seconds);
    log.info(i === 0 ? 'warm-up step' : `step ${i}`, { seconds: Number(seconds.toFixed(3)), numTensors: tf.memory().numTensors });
  }
  executor.dispose();
  model.dispose();
  return { times, backend: backend.name, extra: { trainable_parameters: trainableParameterCount(lora.sites, spec.lora.rank) } };
}

/** What the coordinator counted in a measured step, and the CPU time its process used since the previous one. */
interface CountedStep {
  readonly costs: StepCosts;
  /** µs of CPU (user + system) of the coordinator's process */
  readonly cpuMicros: number;
}

/**
 * Means over the measured steps of what the coordinator counted: protobuf
 * bytes of the rounds' Task messages out and TaskResult/TaskError messages
 * back (δ travels inline in each task, gradients in each result), and the
 * rounds' time outside the slowest worker's compute (advclip_step_seconds
 * {phase="network"}). Adapter versions travel apart (NATS or GetAdapter):
 * their size is given, once per version and worker. Per round: the time
 * outside the slowest worker's compute (round_overhead_seconds) and the
 * parts of it the coordinator spends itself (publishing the adapter
 * version, encoding tasks, decoding results), the workers' part around
 * their compute (decoding the task, fetching the adapter version, encoding
 * the result: the slowest task's time less the slowest compute), the rest
 * (transfer and queueing at either end: round_transport_seconds), and the
 * coordinator process's CPU time.
 */
function networkFigures(steps: readonly CountedStep[]): Record<string, number> {
  const costs = steps.map((s) => s.costs);
  const mean = (of: (c: StepCosts) => number) => costs.reduce((sum, c) => sum + of(c), 0) / costs.length;
  const rounds = mean((c) => c.rounds);
  const perRound = (of: (c: StepCosts) => number) => (rounds > 0 ? mean(of) / rounds / 1000 : 0);
  return {
    rounds_per_step: rounds,
    round_overhead_seconds: perRound((c) => c.roundsMs - c.computeMs),
    round_publish_seconds: perRound((c) => c.publishMs),
    round_encode_seconds: perRound((c) => c.encodeMs),
    round_decode_seconds: perRound((c) => c.decodeMs),
    round_worker_side_seconds: perRound((c) => Math.max(0, c.taskMs - c.computeMs)),
    round_transport_seconds: perRound((c) => Math.max(0, c.roundsMs - c.publishMs - c.taskMs)),
    coordinator_cpu_seconds_per_round: rounds > 0 ? steps.reduce((sum, s) => sum + s.cpuMicros, 0) / steps.length / rounds / 1e6 : 0,
    update_seconds_per_step: mean((c) => c.updateMs) / 1000,
    network_bytes_per_step: mean((c) => c.sentBytes + c.receivedBytes),
    network_bytes_sent_per_step: mean((c) => c.sentBytes),
    network_bytes_received_per_step: mean((c) => c.receivedBytes),
    network_seconds_per_step: mean((c) => c.networkMs) / 1000,
    compute_seconds_per_step: mean((c) => c.computeMs) / 1000,
    adapter_bytes_per_version: mean((c) => c.adapterBytes),
  };
}

/** The same steps through a local cluster of `workers` workers (replicas of one process per core beyond the cores; mTLS, loopback NATS), on the synthetic run written to disk. */
export async function timeStepsOnCluster(config: ClipConfig, spec: TrainSpec, promptCount: number, workers: number, backend: string | undefined, log: Logger): Promise<TimedSteps> {
  if (!Number.isInteger(workers) || workers < 1) throw invalidArgument(`--workers must be ≥ 1, got ${workers}`);
  const dir = await mkdtemp(join(tmpdir(), 'advclip-bench-'));
  try {
    log.info('writing a synthetic model and data set', { dir });
    const run = await writeSyntheticRun(dir, config, spec.batchSize, promptCount);
    // the step benchmarked in this process, on the synthetic files
    const runSpec = parseRunSpec({ model: run.model, data: { root: run.data }, shots: run.shots, train: spec });
    const cluster = {
      run: runSpec,
      out: join(dir, 'out'),
      json: false,
      backend,
      workers,
      insecure: false,
      metrics: { port: 0 },
      deadline: DEFAULT_DEADLINE,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    };
    const counted: CountedStep[] = [];
    let cpu = process.cpuUsage();
    const summary = await trainOnLocalCluster(cluster, log, {
      onStep: (_report, _state, coordinator) => {
        const used = process.cpuUsage(cpu);
        cpu = process.cpuUsage();
        counted.push({ costs: coordinator.lastStepCosts!, cpuMicros: used.user + used.system });
      },
    });
    const trained = JSON.parse(await readFile(join(summary.out, 'train.json'), 'utf8')) as { worker_backends?: string[]; history: { seconds: number }[] };
    const times = trained.history.slice(1).map((h) => h.seconds);
    // what the workers computed on (the coordinator computes nothing)
    return { times, backend: trained.worker_backends?.join('+') || 'unknown', extra: networkFigures(counted.slice(1)) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
