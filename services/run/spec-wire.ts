/**
 * The RunSpec on the wire (proto/advclip/v1/run.proto), both ways. Encoding
 * is total; decoding checks the spec version first (a worker of another
 * version refuses the run, naming the field), then maps the message onto
 * the RunSpec schema, so a field a coordinator left empty or filled wrongly
 * fails with its proto name (`RegisterReply.run_spec.train.lora.rank ...`).
 */
import { failedPrecondition, invalidArgument } from '../core/errors.ts';
import type { RunSpec as RunSpecMessage, RunSpec__Output } from '../protocol/generated/advclip/v1/RunSpec.ts';
import { parseRunSpec, RUN_SPEC_VERSION, type FieldNamer, type RunSpec } from './spec.ts';

/** What identifies a run's inputs beyond their paths: the hashes a worker must reproduce. */
export interface RunInputsIdentity {
  readonly modelSha256: string;
  readonly trainSetSha256: string;
}

export interface WireRun extends RunInputsIdentity {
  readonly spec: RunSpec;
}

const FIELD = 'RegisterReply.run_spec';

export function encodeRunSpec({ spec, modelSha256, trainSetSha256 }: WireRun): RunSpecMessage {
  const t = spec.train;
  return {
    spec_version: RUN_SPEC_VERSION,
    model: spec.model,
    model_sha256: modelSha256,
    data_root: spec.data.root,
    split_file: spec.data.splitFile ?? '',
    dataset_name: spec.data.datasetName ?? '',
    train_set_sha256: trainSetSha256,
    template: spec.template,
    shots: spec.shots,
    train: {
      method: t.method,
      seed: t.seed,
      lora: {
        rank: t.lora.rank,
        alpha: t.lora.alpha,
        rslora: t.lora.rslora,
        dropout: t.lora.dropout,
        targets: [...t.lora.targets],
        towers: [...t.lora.towers],
        layers: t.lora.layers ? [...t.lora.layers] : [],
        every_layer: t.lora.layers === null,
        init: t.lora.init,
      },
      epsilon: t.epsilon,
      tau: t.tau,
      perturbation: t.perturbation,
      delta_step: t.deltaStep,
      lr_delta: t.lrDelta,
      delta_calibration: t.deltaCalibration,
      lora_update: t.loraUpdate,
      optimizer: t.optimizer,
      lr: t.lr,
      schedule: t.schedule,
      weight_decay: t.weightDecay,
      iters: t.iters,
      batch_size: t.batchSize,
      chunk_size: t.chunkSize,
      augment: t.augment,
      sync: t.sync,
      clean_loss: t.cleanLoss,
      reset_delta_each_epoch: t.resetDeltaEachEpoch,
    },
    evaluation: { ...spec.evaluation },
  };
}

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const DATA_FIELDS: Readonly<Record<string, string>> = { root: 'data_root', splitFile: 'split_file', datasetName: 'dataset_name' };

/** A RunSpec path as its proto field: data.root → data_root, train.lora.rank → train.lora.rank. */
const protoField: FieldNamer = (path) => {
  const keys = path.map(String);
  const name = keys[0] === 'data' && keys.length > 1 ? DATA_FIELDS[keys[1]] ?? snake(keys[1]) : keys.map((k) => (/^\d+$/.test(k) ? `[${k}]` : snake(k))).join('.');
  return `${FIELD}.${name.replace(/\.\[/g, '[')}`;
};

const HASH = /^[0-9a-f]{64}$/;

/** The run a RegisterReply carries, validated; refuses a spec of another version or with a missing/bad field. */
export function decodeRunSpec(message: RunSpec__Output | null | undefined): WireRun {
  if (!message) throw failedPrecondition(`${FIELD} is missing: the coordinator runs an older advclip (run the same version everywhere)`);
  if (message.spec_version !== RUN_SPEC_VERSION) {
    throw failedPrecondition(`${FIELD}.spec_version is ${message.spec_version}, this worker speaks ${RUN_SPEC_VERSION}: run the same advclip version on the coordinator and the workers`);
  }
  for (const key of ['model_sha256', 'train_set_sha256'] as const) {
    if (!HASH.test(message[key])) throw invalidArgument(`${FIELD}.${key} is not a SHA-256 in hex: "${message[key]}"`);
  }
  const train = message.train;
  if (!train) throw invalidArgument(`${FIELD}.train is missing`);
  const lora = train.lora;
  if (!lora) throw invalidArgument(`${FIELD}.train.lora is missing`);
  const evaluation = message.evaluation;
  if (!evaluation) throw invalidArgument(`${FIELD}.evaluation is missing`);
  const spec = parseRunSpec(
    {
      model: message.model,
      data: { root: message.data_root, splitFile: message.split_file || null, datasetName: message.dataset_name || null },
      template: message.template,
      shots: message.shots,
      train: {
        method: train.method,
        seed: train.seed,
        lora: {
          rank: lora.rank,
          alpha: lora.alpha,
          rslora: lora.rslora,
          dropout: lora.dropout,
          targets: lora.targets,
          towers: lora.towers,
          layers: lora.every_layer ? null : lora.layers,
          init: lora.init,
        },
        epsilon: train.epsilon,
        tau: train.tau,
        perturbation: train.perturbation,
        deltaStep: train.delta_step,
        lrDelta: train.lr_delta,
        deltaCalibration: train.delta_calibration,
        loraUpdate: train.lora_update,
        optimizer: train.optimizer,
        lr: train.lr,
        schedule: train.schedule,
        weightDecay: train.weight_decay,
        iters: train.iters,
        batchSize: train.batch_size,
        chunkSize: train.chunk_size,
        augment: train.augment,
        sync: train.sync,
        cleanLoss: train.clean_loss,
        resetDeltaEachEpoch: train.reset_delta_each_epoch,
      },
      evaluation: { every: evaluation.every, attack: evaluation.attack, limit: evaluation.limit, epsilon: evaluation.epsilon, steps: evaluation.steps },
    },
    protoField,
  );
  return { spec, modelSha256: message.model_sha256, trainSetSha256: message.train_set_sha256 };
}
