/**
 * A worker's setup of the run its coordinator sent: the RunSpec off the
 * wire, with this worker's own model and data directories when it has
 * them (a container mounts them elsewhere), prepared as `advclip train`
 * prepares it; refused when its model or K-shot set is not the run's. A
 * model is loaded once per hash and shared by the runs that use it (a
 * sweep's runs on one backbone).
 */
import type { BackendChoice } from '../core/backend.ts';
import { failedPrecondition } from '../core/errors.ts';
import { ShardComputer } from '../core/shard.ts';
import { modelSha256, trainSetSha256 } from '../io/model-hash.ts';
import type { RunSpec__Output } from '../protocol/generated/advclip/v1/RunSpec.ts';
import type { Logger } from '../protocol/log.ts';
import { roundShapes } from '../protocol/task-codec.ts';
import type { RunPreparer } from '../worker/worker.ts';
import { loadModel, type LoadedModel } from './backend.ts';
import { prepareRun } from './prepare.ts';
import { RUN_SPEC_VERSION } from './spec.ts';
import { decodeRunSpec } from './spec-wire.ts';

/** Directories of this worker that replace the coordinator's paths. */
export interface WorkerPaths {
  readonly model?: string;
  readonly data?: string;
}

export function workerSetupFrom(paths: WorkerPaths, backend: BackendChoice, log: Logger): RunPreparer {
  const models = modelsByHash(backend);
  const build = async (message: RunSpec__Output | null) => {
    const wire = decodeRunSpec(message);
    const run = { ...wire.spec, model: paths.model ?? wire.spec.model, data: { ...wire.spec.data, root: paths.data ?? wire.spec.data.root } };
    const model = await models.acquire(run.model, wire.modelSha256);
    let setup: Awaited<ReturnType<typeof prepareRun>>;
    try {
      setup = await prepareRun(run, backend, log, model.loaded);
    } catch (err) {
      model.release();
      throw err;
    }
    const shard = new ShardComputer(setup.model, setup.spec, setup.prompts, setup.source, setup.evaluation);
    const dispose = () => {
      shard.dispose();
      model.release();
    };
    try {
      if (trainSetSha256(setup.dataset.root, setup.trainSet) !== wire.trainSetSha256) throw failedPrecondition("this worker's K-shot training set differs from the run's: check --data (same files, same split)");
    } catch (err) {
      dispose();
      throw err;
    }
    return { shard, initial: setup.initial, shapes: roundShapes(setup.dir.config, setup.initial.sites, setup.spec.lora.rank, setup.dataset.classNames.length), dispose };
  };
  return { specVersion: RUN_SPEC_VERSION, setup: build };
}

/**
 * The models a worker holds, one per model hash: the runs of a sweep on
 * the same model share it (its weights are read-only to every run), and it
 * is disposed when the last run using it is. A model whose hash is not the
 * run's is refused.
 */
function modelsByHash(backend: BackendChoice) {
  const held = new Map<string, { loaded: Promise<LoadedModel>; refs: number }>();
  const load = async (path: string, sha256: string): Promise<LoadedModel> => {
    const loaded = await loadModel(path, backend);
    const actual = await modelSha256(loaded.dir.files);
    if (actual !== sha256) {
      loaded.model.dispose();
      throw failedPrecondition(`this worker's model (sha256 ${actual.slice(0, 12)}…) is not the run's (${sha256.slice(0, 12)}…)`);
    }
    return loaded;
  };
  return {
    async acquire(path: string, sha256: string): Promise<{ loaded: LoadedModel; release(): void }> {
      const key = `${sha256} ${path}`;
      let entry = held.get(key);
      if (!entry) {
        entry = { loaded: load(path, sha256), refs: 0 };
        held.set(key, entry);
      }
      const mine = entry;
      mine.refs++;
      let loaded: LoadedModel;
      try {
        loaded = await mine.loaded;
      } catch (err) {
        if (--mine.refs === 0 && held.get(key) === mine) held.delete(key);
        throw err;
      }
      let released = false;
      return {
        loaded,
        release: () => {
          if (released) return;
          released = true;
          if (--mine.refs > 0) return;
          if (held.get(key) === mine) held.delete(key);
          loaded.model.dispose();
        },
      };
    },
  };
}
