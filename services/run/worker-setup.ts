/**
 * A worker's setup of the run its coordinator sent: the RunSpec off the
 * wire, with this worker's own model and data directories when it has
 * them (a container mounts them elsewhere), prepared as `advclip train`
 * prepares it; refused when its model or K-shot set is not the run's.
 */
import type { BackendChoice } from '../core/backend.ts';
import { failedPrecondition } from '../core/errors.ts';
import { ShardComputer } from '../core/shard.ts';
import { modelSha256, trainSetSha256 } from '../io/model-hash.ts';
import type { RunSpec__Output } from '../protocol/generated/advclip/v1/RunSpec.ts';
import type { Logger } from '../protocol/log.ts';
import { roundShapes } from '../protocol/task-codec.ts';
import type { RunPreparer } from '../worker/worker.ts';
import { prepareRun } from './prepare.ts';
import { RUN_SPEC_VERSION } from './spec.ts';
import { decodeRunSpec } from './spec-wire.ts';

/** Directories of this worker that replace the coordinator's paths. */
export interface WorkerPaths {
  readonly model?: string;
  readonly data?: string;
}

export function workerSetupFrom(paths: WorkerPaths, backend: BackendChoice, log: Logger): RunPreparer {
  const build = async (message: RunSpec__Output | null) => {
    const wire = decodeRunSpec(message);
    const run = { ...wire.spec, model: paths.model ?? wire.spec.model, data: { ...wire.spec.data, root: paths.data ?? wire.spec.data.root } };
    const setup = await prepareRun(run, backend, log);
    const shard = new ShardComputer(setup.model, setup.spec, setup.prompts, setup.source, setup.evaluation);
    const dispose = () => {
      shard.dispose();
      setup.model.dispose();
    };
    try {
      const model = await modelSha256(setup.dir.files);
      if (model !== wire.modelSha256) throw failedPrecondition(`this worker's model (sha256 ${model.slice(0, 12)}…) is not the run's (${wire.modelSha256.slice(0, 12)}…)`);
      if (trainSetSha256(setup.dataset.root, setup.trainSet) !== wire.trainSetSha256) throw failedPrecondition("this worker's K-shot training set differs from the run's: check --data (same files, same split)");
    } catch (err) {
      dispose();
      throw err;
    }
    return { shard, initial: setup.initial, shapes: roundShapes(setup.dir.config, setup.initial.sites, setup.spec.lora.rank, setup.dataset.classNames.length), dispose };
  };
  return { specVersion: RUN_SPEC_VERSION, setup: build };
}
