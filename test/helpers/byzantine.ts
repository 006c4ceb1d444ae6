/**
 * A misbehaving worker for tests: the real worker (it registers, holds
 * adapter versions and speaks the protocol), whose ShardComputer's results
 * are tampered with before they are encoded — finite numbers of the right
 * shapes, so the codec accepts them and only the aggregation can tell.
 */
import type { ChunkResult, RoundResult, ShardComputer } from '../../services/core/shard.ts';
import { RandomStream } from '../../services/core/rng.ts';
import type { RunPreparer } from '../../services/worker/worker.ts';

/** What the worker does to one vector of its results. */
export type Tamper = (values: Float32Array) => Float32Array;

export const scaledBy =
  (factor: number): Tamper =>
  (values) =>
    values.map((v) => v * factor);

/** Gaussian noise of standard deviation `sigma` in place of the values (seeded: a test is repeatable). */
export const noise = (sigma: number, seed = 7): Tamper => {
  const rng = RandomStream.of(seed, 0xbad);
  return (values) => values.map(() => sigma * rng.normal());
};

/** The lowest bit of the first value flipped: the smallest wrong answer there is. */
export const lowBitFlipped: Tamper = (values) => {
  const out = values.slice();
  new Uint32Array(out.buffer, out.byteOffset, 1)[0] ^= 1;
  return out;
};

/** Which results are tampered with: all of them, or only the first chunk of each (a single wrong sum per task). */
export type Scope = 'every-chunk' | 'first-chunk';

function tampered(result: RoundResult, tamper: Tamper, scope: Scope): RoundResult {
  const chunk = (c: ChunkResult, i: number): ChunkResult => (scope === 'first-chunk' && i > 0 ? c : { ...c, grads: new Map([...c.grads].map(([name, values]) => [name, tamper(values)])) });
  const localDelta = result.localDelta && scope === 'every-chunk' ? { ...result.localDelta, delta: tamper(result.localDelta.delta) } : result.localDelta;
  return { chunks: result.chunks.map(chunk), localDelta };
}

/** `honest`'s setup with its shard's `compute` replaced by `compute(original, ...args)`; everything else is the honest shard's. */
export function withCompute(
  honest: RunPreparer,
  compute: (original: ShardComputer['compute'], ...args: Parameters<ShardComputer['compute']>) => ReturnType<ShardComputer['compute']>,
): RunPreparer {
  return {
    specVersion: honest.specVersion,
    async setup(spec) {
      const setup = await honest.setup(spec);
      const shard = new Proxy(setup.shard, {
        get(target, key) {
          if (key === 'compute') return (...args: Parameters<ShardComputer['compute']>) => compute(target.compute.bind(target), ...args);
          const value = Reflect.get(target, key, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      return { ...setup, shard, dispose: () => setup.dispose() };
    },
  };
}

/** `honest`'s setup with the gradient sums (and local δ) it returns passed through `tamper`. */
export const byzantine = (honest: RunPreparer, tamper: Tamper, scope: Scope = 'every-chunk'): RunPreparer =>
  withCompute(honest, async (original, ...args) => tampered(await original(...args), tamper, scope));
