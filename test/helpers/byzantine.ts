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

function tampered(result: RoundResult, tamper: Tamper): RoundResult {
  const chunk = (c: ChunkResult): ChunkResult => ({ ...c, grads: new Map([...c.grads].map(([name, values]) => [name, tamper(values)])) });
  return { chunks: result.chunks.map(chunk), localDelta: result.localDelta ? { ...result.localDelta, delta: tamper(result.localDelta.delta) } : null };
}

/** `honest`'s setup with every gradient sum and local δ it returns passed through `tamper`. */
export function byzantine(honest: RunPreparer, tamper: Tamper): RunPreparer {
  return {
    specVersion: honest.specVersion,
    async setup(spec) {
      const setup = await honest.setup(spec);
      const shard = new Proxy(setup.shard, {
        get(target, key) {
          if (key === 'compute') return async (...args: Parameters<ShardComputer['compute']>) => tampered(await target.compute(...args), tamper);
          const value = Reflect.get(target, key, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      return { ...setup, shard, dispose: () => setup.dispose() };
    },
  };
}
