import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../services/core/backend.ts';
import { ClipModel, type Adapters } from '../../../services/core/clip.ts';
import { localExecutor } from '../../../services/core/local-executor.ts';
import { initLora, loraScale, type LoraWeights } from '../../../services/core/lora.ts';
import { RandomStream } from '../../../services/core/rng.ts';
import { chunksOf } from '../../../services/core/sampling.ts';
import { AdapterTensors, gradKeyA, gradKeyB, ShardComputer, textChunks, type ChunkResult, type RoundKind, type RoundTask, type TrainingSource } from '../../../services/core/shard.ts';
import { hostTidy } from '../../../services/core/scope.ts';
import type { TrainSpec } from '../../../services/core/train-spec.ts';
import { initTrainState, RedoStep, trainStep, type ExecutedRound, type Executor, type StepReport, type TrainState } from '../../../services/core/trainer.ts';
import type { HostTensor } from '../../../services/core/tensor.ts';
import { bitwiseEqual, centralDifference, maxAbs, maxAbsDiff, probeIndices } from './numeric.ts';
import { colourTask, tinyConfig, tinySpec, tinyWeights, type ColourTask } from './tiny-task.ts';

const weights = tinyWeights(2);
const frozenCopy = new Map([...weights].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
let model: ClipModel;
/** the same model with logit scale 10 instead of 100: a smoother loss, so float32 finite differences resolve it */
let smoothModel: ClipModel;

before(async () => {
  await initBackend('wasm');
  model = ClipModel.fromWeights(tinyConfig, weights, { explicitTranspose: true });
  smoothModel = ClipModel.fromWeights(tinyConfig, new Map([...weights, ['logit_scale', { shape: [], data: Float32Array.of(Math.log(10)) }]]), { explicitTranspose: true });
});
after(() => {
  model.dispose();
  smoothModel.dispose();
});

/** LoRA with B ≠ 0, so that g_A ≠ 0 from the first step. */
function loraWithB(spec: TrainSpec, seed = 30): LoraWeights {
  const lora = initLora(tinyConfig, spec.lora, spec.seed);
  const b = lora.b.map((t, i) => {
    const rng = RandomStream.of(seed, i);
    return { shape: t.shape, data: Float32Array.from(t.data, () => (2 * rng.uniform() - 1) * 0.3) };
  });
  return { ...lora, b };
}

interface Run {
  readonly state: TrainState;
  readonly reports: StepReport[];
  readonly tasks: RoundTask[];
}

type ExecutorFactory = (shard: ShardComputer) => { execute: Executor; dispose(): void };

/** Trains `steps` steps on the task with a fresh shard computer; records every round task. */
async function train(spec: TrainSpec, task: ColourTask, steps: number, opts: { lora?: LoraWeights; executor?: ExecutorFactory; afterStep?: (s: TrainState, r: StepReport) => void } = {}): Promise<Run> {
  const shard = new ShardComputer(model, spec, task.prompts, task.source);
  const ex = (opts.executor ?? localExecutor)(shard);
  const tasks: RoundTask[] = [];
  const execute: Executor = (t, lora, version) => {
    tasks.push(t);
    return ex.execute(t, lora, version);
  };
  const state = initTrainState(spec, opts.lora ?? initLora(tinyConfig, spec.lora, spec.seed));
  const reports: StepReport[] = [];
  try {
    for (let i = 0; i < steps; i++) {
      const r = await trainStep(state, spec, task.labels.length, execute);
      reports.push(r);
      opts.afterStep?.(state, r);
    }
  } finally {
    ex.dispose();
  }
  return { state, reports, tasks };
}

const factors = (lora: LoraWeights): Float32Array[] => lora.sites.flatMap((_, i) => [lora.a[i].data, lora.b[i].data]);
const sameAdapters = (x: LoraWeights, y: LoraWeights) => factors(x).every((f, i) => bitwiseEqual(f, factors(y)[i]));
const adapterDiff = (x: LoraWeights, y: LoraWeights) => Math.max(...factors(x).map((f, i) => maxAbsDiff(f, factors(y)[i])));
const linf = (d: Float32Array | null) => (d ? maxAbs(d) : 0);

/**
 * F(A, B, δ) = mean_i CE(logits(clip01(x_i + δ)), y_i) on the whole task, written
 * directly on the model (text features through the adapted text tower, no dropout).
 */
function meanLoss(task: ColourTask, lora: LoraWeights, params: readonly tf.Tensor[], delta: tf.Tensor | null, m = model): tf.Scalar {
  const n = task.labels.length;
  const x = tf.tensor4d(task.pixels, [n, task.size, task.size, 3]);
  const perturbed = delta ? tf.clipByValue(tf.add(x, delta), 0, 1) : x;
  const adapters: Adapters = {
    scale: loraScale(lora.config),
    factors: new Map(lora.sites.map((s, i) => [s.key, { a: params[2 * i] as tf.Tensor2D, b: params[2 * i + 1] as tf.Tensor2D }])),
    dropout: null,
  };
  const text = m.encodeTexts(task.prompts, adapters);
  const logits = m.logits(m.encodeImages(perturbed as tf.Tensor4D, adapters), text);
  const y = tf.oneHot(tf.tensor1d([...task.labels], 'int32'), task.classes);
  return tf.div(tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)))), n) as tf.Scalar;
}

const paramTensors = (lora: LoraWeights) => lora.sites.flatMap((_, i) => [tf.tensor2d(lora.a[i].data, lora.a[i].shape as [number, number]), tf.tensor2d(lora.b[i].data, lora.b[i].shape as [number, number])]);

/** Algorithm 1, one iteration, by hand with tf.grads on the model: δ from 0, τ projected ascent steps, then the LoRA step. */
function algorithm1(spec: TrainSpec, task: ColourTask, lora: LoraWeights): { lora: LoraWeights; delta: Float32Array } {
  return hostTidy(() => {
    const params = paramTensors(lora);
    const eps = spec.epsilon;
    let delta: tf.Tensor = tf.zeros([task.size, task.size, 3]);
    for (let r = 0; r < spec.tau; r++) {
      const g = tf.grad((d: tf.Tensor) => meanLoss(task, lora, params, d))(delta);
      const step = spec.deltaStep === 'sign' ? tf.sign(g) : g;
      delta = tf.clipByValue(tf.add(delta, tf.mul(step, spec.lrDelta)), -eps, eps);
    }
    const gradsAt = (ps: tf.Tensor[]) => tf.grads((...xs: tf.Tensor[]) => meanLoss(task, lora, xs, delta))(ps);
    const g = gradsAt(params);
    const next = params.map((p, i) => (i % 2 === 0 ? tf.sub(p, tf.mul(g[i], spec.lr)) : p));
    // Jacobi: B from the same W; Gauss–Seidel: g_B at the new A
    const gB = spec.loraUpdate === 'jacobi' ? g : gradsAt(next);
    const out = next.map((p, i) => (i % 2 === 1 ? tf.sub(p, tf.mul(gB[i], spec.lr)) : p));
    const host = (i: number, t: HostTensor) => ({ shape: t.shape, data: out[i].dataSync() as Float32Array });
    return { lora: { ...lora, a: lora.a.map((t, i) => host(2 * i, t)), b: lora.b.map((t, i) => host(2 * i + 1, t)) }, delta: delta.dataSync() as Float32Array };
  });
}

describe('Algorithm 1', () => {
  const task = colourTask(6);
  for (const [deltaStep, lrDelta] of [['grad', 20], ['sign', 3 / 255]] as const) {
    for (const loraUpdate of ['jacobi', 'gauss-seidel'] as const) {
      test(`one iteration equals the hand computation (delta-step ${deltaStep}, ${loraUpdate})`, async (t) => {
        const spec = tinySpec({ batchSize: 6, chunkSize: 6, tau: 3, deltaStep, lrDelta, loraUpdate, lr: 0.5, iters: 1 });
        const lora = loraWithB(spec);
        const { state } = await train(spec, task, 1, { lora });
        const hand = algorithm1(spec, task, lora);
        const err = adapterDiff(state.lora, hand.lora);
        const deltaErr = maxAbsDiff(state.delta!, hand.delta);
        const moved = adapterDiff(state.lora, lora);
        t.diagnostic(`max |trainer − hand|: adapters ${err.toExponential(2)}, δ ${deltaErr.toExponential(2)}; step moved adapters by ${moved.toExponential(2)}, ‖δ‖∞ ${linf(hand.delta).toFixed(4)}`);
        assert.ok(moved > 1e-3, 'the step changes the adapters');
        assert.ok(linf(hand.delta) > spec.epsilon / 4, 'δ moved');
        assert.ok(err <= 1e-5, `adapters differ by ${err}`);
        assert.ok(deltaErr <= 1e-5, `δ differs by ${deltaErr}`);
      });
    }
  }

  test('Gauss–Seidel differs from Jacobi (in B only)', async () => {
    const base = tinySpec({ batchSize: 6, chunkSize: 6, tau: 1, lr: 0.5, iters: 1 });
    const lora = loraWithB(base);
    const j = (await train(base, task, 1, { lora })).state.lora;
    const gs = (await train({ ...base, loraUpdate: 'gauss-seidel' }, task, 1, { lora })).state.lora;
    j.a.forEach((a, i) => assert.ok(bitwiseEqual(a.data, gs.a[i].data), `A[${i}] is the same`));
    assert.ok(Math.max(...j.b.map((b, i) => maxAbsDiff(b.data, gs.b[i].data))) > 1e-4, 'B differs');
  });
});

describe('CLIP-LoRA is τ = 0', () => {
  const task = colourTask(8);
  test('clip-lora = advclip-lora with ε = 0 = advclip-lora with τ = 0, bitwise; clip-lora never touches δ', async () => {
    const common = { batchSize: 4, chunkSize: 2, optimizer: 'adamw', lr: 1e-2, schedule: 'cosine', iters: 4, lora: { ...tinySpec().lora, dropout: 0.25 }, augment: 'crop-flip' } as const;
    const clip = await train(tinySpec({ ...common, method: 'clip-lora' }), task, 4);
    const eps0 = await train(tinySpec({ ...common, epsilon: 0 }), task, 4);
    const tau0 = await train(tinySpec({ ...common, tau: 0 }), task, 4);
    const adv = await train(tinySpec(common), task, 4);
    assert.ok(sameAdapters(clip.state.lora, eps0.state.lora), 'ε = 0');
    assert.ok(sameAdapters(clip.state.lora, tau0.state.lora), 'τ = 0');
    assert.ok(!sameAdapters(clip.state.lora, adv.state.lora), 'with τ, ε > 0 the adapters differ');
    assert.equal(clip.state.delta, null);
    assert.ok(clip.tasks.every((t) => t.delta === null && (t.kind === 'lora' || t.kind === 'text')), 'no δ round, no δ sent');
    assert.ok(clip.reports.every((r) => r.rounds === 2 && r.deltaLinf === 0 && r.gradNorm.delta === 0));
    assert.ok(adv.tasks.some((t) => t.kind === 'delta'));
  });
});

describe('the universal δ', () => {
  const task = colourTask(8);
  test('stays in Δ every step, and is carried across steps and epochs', async () => {
    const spec = tinySpec({ batchSize: 4, chunkSize: 2, tau: 2, deltaStep: 'sign', lrDelta: 8 / 255, epsilon: 8 / 255, iters: 6 });
    const seen: number[] = [];
    const carried: boolean[] = [];
    let previous: Float32Array | null = null;
    const run = await train(spec, task, 6, {
      afterStep: (state, report) => {
        seen.push(linf(state.delta));
        assert.ok(linf(state.delta) <= spec.epsilon + 1e-7, `step ${report.step}: ‖δ‖∞ = ${linf(state.delta)}`);
        assert.equal(report.deltaLinf, linf(state.delta));
        previous = state.delta;
      },
    });
    assert.ok(Math.max(...seen) >= spec.epsilon - 1e-7, 'the projection is active');
    // the first δ round of each step starts at the δ the previous step ended with
    const firsts = run.tasks.filter((t) => t.kind === 'delta' && t.round === 0);
    assert.equal(firsts.length, 6);
    assert.equal(firsts[0].delta, null, 'δ starts at 0');
    for (let s = 1; s < 6; s++) carried.push(firsts[s].delta !== null && linf(firsts[s].delta) > 0);
    assert.ok(carried.every(Boolean), 'carried over steps, across the epoch boundary at step 2 too');
    assert.ok(previous !== null);
    // the LoRA round sees the final δ of its step
    const loraRounds = run.tasks.filter((t) => t.kind === 'lora');
    assert.ok(bitwiseEqual(loraRounds[5].delta!, run.state.delta!));
  });

  test('resetDeltaEachEpoch restarts δ at 0 at each epoch', async () => {
    const spec = tinySpec({ batchSize: 4, chunkSize: 4, tau: 1, iters: 4, resetDeltaEachEpoch: true });
    const run = await train(spec, task, 4);
    const firsts = run.tasks.filter((t) => t.kind === 'delta');
    assert.deepEqual(firsts.map((t) => t.delta === null), [true, false, true, false], 'two steps per epoch');
  });
});

/** An executor that computes every chunk (image chunks, and the text round's class groups) alone, in a shuffled order, and returns them shuffled. */
const shufflingExecutor: ExecutorFactory = (shard) => {
  const inner = localExecutor(shard);
  let call = 0;
  return {
    async execute(task, lora, version): Promise<ExecutedRound> {
      const chunks = task.kind === 'text' && task.chunks.length === 0 ? textChunks(shard.classes) : task.chunks;
      const order = RandomStream.of(99, call++).permutation(chunks.length);
      const results = [];
      for (const i of order) results.push(...(await inner.execute({ ...task, chunks: [chunks[i]] }, lora, version)).chunks);
      return { chunks: results, localDeltas: [], shares: [{ worker: 'shuffled', chunks: results, localDelta: null }] };
    },
    dispose: () => inner.dispose(),
  };
};

describe('determinism', () => {
  const task = colourTask(12);
  const spec = tinySpec({
    batchSize: 8,
    chunkSize: 2,
    optimizer: 'adamw',
    lr: 1e-2,
    schedule: 'cosine',
    iters: 3,
    augment: 'crop-flip',
    lora: { ...tinySpec().lora, dropout: 0.25 },
    deltaStep: 'grad',
    lrDelta: 20,
  });

  test('two runs with the same seed give bit-identical adapters and δ', async () => {
    const a = await train(spec, task, 3);
    const b = await train(spec, task, 3);
    assert.ok(sameAdapters(a.state.lora, b.state.lora));
    assert.ok(bitwiseEqual(a.state.delta!, b.state.delta!));
    const c = await train({ ...spec, seed: 2 }, task, 3, { lora: a.state.lora });
    assert.ok(!sameAdapters(a.state.lora, c.state.lora), 'another seed samples, augments and drops out differently');
  });

  test('chunks computed one by one in a shuffled order give bit-identical adapters', async () => {
    const a = await train(spec, task, 3);
    const b = await train(spec, task, 3, { executor: shufflingExecutor });
    assert.ok(b.tasks.length === a.tasks.length);
    assert.ok(sameAdapters(a.state.lora, b.state.lora));
    assert.ok(bitwiseEqual(a.state.delta!, b.state.delta!));
  });

  test('a step the executor says to redo (RedoStep in any round, Gauss–Seidel too) starts again from its state and ends bitwise the same', async () => {
    for (const s of [spec, { ...spec, loraUpdate: 'gauss-seidel' as const }]) {
      const a = await train(s, task, 3);
      // the run's 5th and 13th rounds say the step's earlier rounds were wrong (mid-step, and after Gauss–Seidel's A update)
      let round = 0;
      const redoing: ExecutorFactory = (shard) => {
        const inner = localExecutor(shard);
        return {
          async execute(t, lora, version) {
            if ([5, 13].includes(++round)) throw new RedoStep('test: an earlier round used a wrong worker');
            return inner.execute(t, lora, version);
          },
          dispose: () => inner.dispose(),
        };
      };
      const b = await train(s, task, 3, { executor: redoing });
      assert.ok(b.tasks.length > a.tasks.length, 'some rounds ran again');
      assert.ok(sameAdapters(a.state.lora, b.state.lora));
      assert.ok(bitwiseEqual(a.state.delta!, b.state.delta!));
      assert.equal(b.state.step, a.state.step);
    }
  });

  test('a text round of several class groups, computed group by group in a shuffled order, gives bit-identical adapters', async () => {
    const six = colourTask(12, 6);
    assert.ok(textChunks(6).length > 1, 'more than one class group');
    const a = await train(spec, six, 2);
    const b = await train(spec, six, 2, { executor: shufflingExecutor });
    assert.ok(sameAdapters(a.state.lora, b.state.lora));
  });
});

describe("the trainer's gradients match finite differences of the mean loss", () => {
  const task = colourTask(4);
  const spec = tinySpec({ batchSize: 4, chunkSize: 2 });
  const lora = loraWithB(spec, 31);
  const all = [0, 1, 2, 3];
  const delta = (() => {
    const rng = RandomStream.of(77);
    return Float32Array.from({ length: task.size * task.size * 3 }, () => (2 * rng.uniform() - 1) * spec.epsilon);
  })();
  const roundTask = (kind: RoundTask['kind'], textGrad: Float32Array | null = null): RoundTask => ({ step: 0, round: 0, kind, chunks: chunksOf(all, 2), delta, textGrad });

  test('∇_δ (delta round)', async (t) => {
    const ex = localExecutor(new ShardComputer(smoothModel, spec, task.prompts, task.source));
    const res = await ex.execute(roundTask('delta'), lora, 0);
    ex.dispose();
    const g = new Float32Array(delta.length);
    for (const c of res.chunks) c.grads.get('delta')!.forEach((v, j) => (g[j] += v / all.length));
    const params = paramTensors(lora);
    const f = (d: Float32Array) => tf.tidy(() => meanLoss(task, lora, params, tf.tensor3d(d, [task.size, task.size, 3]), smoothModel).dataSync()[0]);
    let worst = 0;
    for (const i of probeIndices(g, 4)) {
      const fd = centralDifference(f, Float32Array.from(delta), i, 1e-2);
      worst = Math.max(worst, Math.abs(fd - g[i]) / maxAbs(g));
      assert.ok(Math.abs(fd - g[i]) <= 1e-2 * maxAbs(g), `δ[${i}]: trainer ${g[i]}, fd ${fd}`);
    }
    t.diagnostic(`max |fd − g| / max|g| = ${worst.toExponential(2)}`);
    tf.dispose(params);
  });

  test('∇_A, ∇_B of both towers (lora round, then the text round with G)', async (t) => {
    const ex = localExecutor(new ShardComputer(smoothModel, spec, task.prompts, task.source));
    const res = await ex.execute(roundTask('lora'), lora, 0);
    const sumOver = (chunks: readonly ChunkResult[]) => (name: string) => {
      const acc = new Float32Array(chunks[0].grads.get(name)!.length);
      for (const c of [...chunks].sort((a, b) => a.index - b.index)) c.grads.get(name)!.forEach((v, j) => (acc[j] += v));
      return acc;
    };
    const sumOf = sumOver(res.chunks);
    const text = await ex.execute({ ...roundTask('text', sumOf('text_features')), chunks: [] }, lora, 0);
    ex.dispose();
    const vision = lora.sites.findIndex((s) => s.tower === 'vision' && s.layer === 1 && s.target === 'v_proj');
    const textSite = lora.sites.findIndex((s) => s.tower === 'text' && s.layer === 0 && s.target === 'v_proj');
    assert.ok(vision >= 0 && textSite >= 0);
    let worst = 0;
    for (const [site, source] of [[vision, sumOf], [textSite, sumOver(text.chunks)]] as const) {
      const key = lora.sites[site].key;
      for (const [p, name] of [[2 * site, gradKeyA(key)], [2 * site + 1, gradKeyB(key)]] as const) {
        const g = source(name).map((v) => v / all.length);
        const params = paramTensors(lora);
        const host = params[p].dataSync() as Float32Array;
        const f = (v: Float32Array) => tf.tidy(() => meanLoss(task, lora, params.map((q, j) => (j === p ? tf.tensor2d(v, q.shape as [number, number]) : q)), tf.tensor3d(delta, [task.size, task.size, 3]), smoothModel).dataSync()[0]);
        assert.ok(maxAbs(g) > 0, `${name} is not zero`);
        for (const i of probeIndices(g, 2, 1)) {
          const fd = centralDifference(f, Float32Array.from(host), i, 1e-2);
          worst = Math.max(worst, Math.abs(fd - g[i]) / maxAbs(g));
          assert.ok(Math.abs(fd - g[i]) <= 1e-2 * maxAbs(g), `${name}[${i}]: trainer ${g[i]}, fd ${fd}`);
        }
        tf.dispose(params);
      }
    }
    t.diagnostic(`max |fd − g| / max|g| = ${worst.toExponential(2)}`);
  });
});

describe('other perturbation and sync modes', () => {
  const task = colourTask(8);
  test('per-sample PGD: no universal δ, one round per step, adversarial loss ≥ clean loss', async () => {
    const spec = tinySpec({ perturbation: 'per-sample', batchSize: 4, chunkSize: 2, tau: 3, cleanLoss: true, iters: 3 });
    const run = await train(spec, task, 3);
    assert.equal(run.state.delta, null);
    assert.ok(run.tasks.every((t) => t.kind === 'lora' || t.kind === 'text'));
    for (const r of run.reports) {
      assert.ok(Number.isFinite(r.loss) && Number.isFinite(r.cleanLoss));
      assert.ok(r.loss >= r.cleanLoss - 1e-6, `step ${r.step}: adv ${r.loss} < clean ${r.cleanLoss}`);
    }
  });

  for (const loraUpdate of ['jacobi', 'gauss-seidel'] as const) {
    test(`local-δ with one executor equals exact mode (${loraUpdate}); δ stays in Δ`, async () => {
      const base = { batchSize: 4, chunkSize: 2, tau: 2, deltaStep: 'grad', lrDelta: 20, iters: 3, loraUpdate } as const;
      const exact = await train(tinySpec(base), task, 3, { lora: loraWithB(tinySpec(base)) });
      const local = await train(tinySpec({ ...base, sync: 'local-delta' }), task, 3, {
        lora: loraWithB(tinySpec(base)),
        afterStep: (s) => assert.ok(linf(s.delta) <= tinySpec(base).epsilon + 1e-7),
      });
      assert.ok(local.tasks.some((t) => t.kind === 'local-delta') && !local.tasks.some((t) => t.kind === 'delta'));
      assert.ok(linf(local.state.delta) > 0);
      const err = adapterDiff(exact.state.lora, local.state.lora);
      assert.ok(err <= 1e-6, `adapters differ by ${err}`);
      assert.ok(maxAbsDiff(exact.state.delta!, local.state.delta!) <= 1e-6);
    });
  }
});

describe('training', () => {
  test('the loss falls on a tiny learnable task (colour → class)', async (t) => {
    const task = colourTask(12);
    const spec = tinySpec({ batchSize: 6, chunkSize: 3, optimizer: 'adamw', lr: 1e-2, schedule: 'cosine', iters: 30, epsilon: 1 / 255, lrDelta: 0.5 / 255 });
    const run = await train(spec, task, 30);
    const mean = (rs: StepReport[]) => rs.reduce((s, r) => s + r.loss, 0) / rs.length;
    const first = mean(run.reports.slice(0, 4));
    const last = mean(run.reports.slice(-4));
    t.diagnostic(`mean loss: first 4 steps ${first.toFixed(3)}, last 4 steps ${last.toFixed(3)}`);
    assert.ok(last < 0.5 * first, `loss ${first} → ${last}`);
  });

  test('frozen weights are bit-identical after training, and so is the B = 0 model', async () => {
    const task = colourTask(8);
    const spec = tinySpec({ batchSize: 4, chunkSize: 2, iters: 3, lora: { ...tinySpec().lora, targets: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'] } });
    const outputs = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(task.pixels, [8, task.size, task.size, 3]);
        return [model.encodeImages(x).dataSync() as Float32Array, model.encodeTexts(task.prompts).dataSync() as Float32Array];
      });
    const before = outputs();
    const run = await train(spec, task, 3);
    assert.ok(adapterDiff(run.state.lora, initLora(tinyConfig, spec.lora, spec.seed)) > 0, 'training changed the adapters');
    for (const [name, t] of frozenCopy) assert.ok(bitwiseEqual(weights.get(name)!.data, t.data), name);
    const afterTraining = outputs();
    assert.ok(bitwiseEqual(before[0], afterTraining[0]) && bitwiseEqual(before[1], afterTraining[1]));
  });

  test('numTensors is flat across 20 steps', async () => {
    const task = colourTask(8);
    const spec = tinySpec({ batchSize: 4, chunkSize: 2, iters: 21, cleanLoss: true, lora: { ...tinySpec().lora, dropout: 0.25 }, augment: 'crop-flip' });
    const counts: number[] = [];
    await train(spec, task, 21, { afterStep: () => counts.push(tf.memory().numTensors) });
    assert.deepEqual(counts.slice(1), Array(20).fill(counts[0]), `numTensors per step: ${counts.join(',')}`);
  });
});

describe('augmentation of the originals', () => {
  test('every round of a step sees the same crop of each original, on any split; the next step another', async () => {
    // originals of their own sizes, none the model's: the crop is drawn on each and resized to it
    const originals = [0, 1, 2, 3].map((i) => {
      const rng = RandomStream.of(40, i);
      const [width, height] = [2 * tinyConfig.vision.imageSize + 5 * i, tinyConfig.vision.imageSize + 3 * i];
      return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.below(256)) };
    });
    const source: TrainingSource = async (samples) => ({ originals: samples.map((s) => originals[s]), labels: samples.map((s) => s % 3) });
    const spec = tinySpec({ augment: 'crop-flip', batchSize: 4, chunkSize: 4 }); // no LoRA dropout: rounds differ by nothing else
    const shard = new ShardComputer(model, spec, colourTask(3).prompts, source);
    const adapter = new AdapterTensors(loraWithB(spec));
    const at = async (step: number, round: number, kind: RoundKind, chunks = [{ index: 0, samples: [0, 1, 2, 3] }]) =>
      (await shard.compute({ step, round, kind, chunks, delta: null, textGrad: null }, adapter, 0)).chunks;
    try {
      const [first] = await at(0, 0, 'delta');
      const [second] = await at(0, 1, 'delta');
      const [descent] = await at(0, 2, 'lora');
      const split = await at(0, 1, 'delta', [{ index: 0, samples: [0, 1] }, { index: 1, samples: [2, 3] }]);
      const [next] = await at(1, 0, 'delta');
      assert.ok(bitwiseEqual(first.grads.get('delta')!, second.grads.get('delta')!), 'the two ascent rounds');
      assert.ok(Math.abs(descent.advLossSum - first.advLossSum) <= 1e-5 * Math.abs(first.advLossSum), `the descent round: loss ${descent.advLossSum} vs ${first.advLossSum}`);
      const halves = Float32Array.from(split[0].grads.get('delta')!, (v, j) => v + split[1].grads.get('delta')![j]);
      assert.ok(maxAbsDiff(halves, first.grads.get('delta')!) <= 1e-5 * maxAbs(first.grads.get('delta')!), 'two chunks of two samples');
      assert.ok(!bitwiseEqual(first.grads.get('delta')!, next.grads.get('delta')!), 'the next step crops anew');
    } finally {
      adapter.dispose();
      shard.dispose();
    }
  });
});

describe("the paper's δ ascent with a calibrated η_δ", () => {
  const task = colourTask(8);
  const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);

  test('η_δ is fixed at the first δ round as lrDelta·√d/‖ḡ₀‖₂: the first raw step moves each pixel lrDelta in RMS; later steps keep η_δ', async () => {
    // ε large enough that the projection never clips: δ₁ = η_δ·ḡ₀ exactly
    const spec = tinySpec({ deltaStep: 'grad', deltaCalibration: 'first-gradient', epsilon: 0.5, lrDelta: 0.01, tau: 1, batchSize: 4, chunkSize: 2, iters: 3 });
    const etas: (number | null)[] = [];
    const deltas: Float32Array[] = [];
    const run = await train(spec, task, 3, { afterStep: (s) => (etas.push(s.calibratedLrDelta), deltas.push(Float32Array.from(s.delta!))) });
    assert.ok(maxAbs(deltas[0]) < spec.epsilon, 'not clipped');
    assert.ok(Math.abs(rms(deltas[0]) - spec.lrDelta) < 1e-6, `RMS of the first step ${rms(deltas[0])}`);
    assert.ok(etas[0] !== null && etas.every((e) => e === etas[0]), `η_δ per step: ${etas.join(', ')}`);
    assert.ok(run.reports.every((r) => r.lrDelta === etas[0]), 'each step reports the η_δ it used');
    // ḡ₀ from the first δ round, and η_δ from it by the formula
    const shard = new ShardComputer(model, spec, task.prompts, task.source);
    const adapter = new AdapterTensors(initLora(tinyConfig, spec.lora, spec.seed));
    try {
      const first = run.tasks.find((t) => t.kind === 'delta')!;
      const chunks = (await shard.compute(first, adapter, 0)).chunks;
      const g = Float32Array.from(chunks[0].grads.get('delta')!, (v, j) => v + chunks[1].grads.get('delta')![j]);
      const norm = Math.sqrt(g.reduce((s, v) => s + (v / 4) ** 2, 0));
      assert.ok(Math.abs(etas[0]! - (spec.lrDelta * Math.sqrt(g.length)) / norm) <= 1e-6 * etas[0]!);
    } finally {
      adapter.dispose();
      shard.dispose();
    }
  });

  test('default training moves δ: ‖δ‖∞ ≥ ε/2 from the first step on, at ε = 1/255, and δ stays in Δ', async () => {
    // the defaults of advclip train (train-flags.test.ts), on a tiny batch
    const defaults = { epsilon: 1 / 255, lrDelta: 0.5 / 255, tau: 2, deltaStep: 'grad', deltaCalibration: 'first-gradient', batchSize: 8, chunkSize: 4, optimizer: 'adamw', lr: 2e-4, schedule: 'cosine', iters: 3 } as const;
    const run = await train(tinySpec({ ...defaults, lora: { ...tinySpec().lora, dropout: 0.25 }, augment: 'crop-flip' }), task, 3);
    const eps = defaults.epsilon;
    for (const r of run.reports) assert.ok(r.deltaLinf >= eps / 2 && r.deltaLinf <= eps + 1e-9, `step ${r.step}: ‖δ‖∞ = ${r.deltaLinf * 255}/255`);
    assert.ok(rms(run.state.delta!) >= eps / 4, `most pixels move too: RMS ${rms(run.state.delta!) * 255}/255`);
  });

  test('a run resumed from a state with the calibrated η_δ continues bit for bit; without it, it refuses', async () => {
    const spec = tinySpec({ deltaStep: 'grad', deltaCalibration: 'first-gradient', epsilon: 4 / 255, lrDelta: 2 / 255, batchSize: 4, chunkSize: 2, iters: 4 });
    const whole = await train(spec, task, 4);
    const half = await train(spec, task, 2);
    const shard = new ShardComputer(model, spec, task.prompts, task.source);
    const ex = localExecutor(shard);
    try {
      const resumed = { ...half.state, calibratedLrDelta: half.state.calibratedLrDelta };
      for (let i = 0; i < 2; i++) await trainStep(resumed, spec, task.labels.length, ex.execute);
      assert.ok(sameAdapters(resumed.lora, whole.state.lora) && bitwiseEqual(resumed.delta!, whole.state.delta!));
      const lost = { ...half.state, calibratedLrDelta: null };
      await assert.rejects(trainStep(lost, spec, task.labels.length, ex.execute), /at step 2 but has no calibrated η_δ/);
    } finally {
      ex.dispose();
    }
  });
});
