/**
 * The RunSpec on the wire: what the coordinator encodes, a worker decodes
 * to the same spec (through a real protobuf round trip); a spec of another
 * version, or with a field missing or wrong, is refused naming the field.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunSpec as RunSpecMessage, RunSpec__Output } from '../../../services/protocol/generated/advclip/v1/RunSpec.ts';
import { advclipProto } from '../../../services/protocol/proto-loader.ts';
import { parseRunSpec, RUN_SPEC_VERSION } from '../../../services/run/spec.ts';
import { decodeRunSpec, encodeRunSpec } from '../../../services/run/spec-wire.ts';

const register = advclipProto().Coordinator.service.Register;

/** A RunSpec message as a worker receives it: serialised inside a RegisterReply and parsed back. */
const overTheWire = (run_spec: RunSpecMessage): RunSpec__Output => register.responseDeserialize(register.responseSerialize({ worker_id: 'w', run_spec })).run_spec!;

const identity = { modelSha256: 'a'.repeat(64), trainSetSha256: 'b'.repeat(64) };

test('a spec survives the wire unchanged, with its hashes', () => {
  for (const spec of [
    parseRunSpec({ model: '/m', data: { root: '/d' } }),
    parseRunSpec({
      model: '/m',
      data: { root: '/d', splitFile: '/d/split_zhou_X.json', datasetName: 'X' },
      template: 'itap of a {}.',
      shots: 4,
      train: { method: 'clip-lora', seed: -3, lora: { layers: [0, 2], towers: ['text'], rslora: true, init: 'gaussian' }, sync: 'local-delta', perturbation: 'per-sample', cleanLoss: false },
    }),
  ]) {
    const back = decodeRunSpec(overTheWire(encodeRunSpec({ spec, ...identity })));
    assert.deepEqual(back, { spec, ...identity });
  }
});

test('a spec of another version, or none, is refused naming the field', () => {
  const message = encodeRunSpec({ spec: parseRunSpec({ model: '/m', data: { root: '/d' } }), ...identity });
  assert.throws(() => decodeRunSpec(overTheWire({ ...message, spec_version: RUN_SPEC_VERSION + 1 })), (e: Error & { code?: string }) => e.code === 'FAILED_PRECONDITION' && /RegisterReply\.run_spec\.spec_version is 2, this worker speaks 1/.test(e.message));
  assert.throws(() => decodeRunSpec(null), /RegisterReply\.run_spec is missing/);
});

test('a missing or wrong field is refused with its proto name', () => {
  const message = encodeRunSpec({ spec: parseRunSpec({ model: '/m', data: { root: '/d' } }), ...identity });
  const cases: [RunSpecMessage, RegExp][] = [
    [{ ...message, train: { ...message.train, method: '' } }, /RegisterReply\.run_spec\.train\.method must be one of advclip-lora\|clip-lora, got ""/],
    [{ ...message, train: { ...message.train, lora: { ...message.train!.lora, rank: 0 } } }, /RegisterReply\.run_spec\.train\.lora\.rank must be a positive integer, got 0/],
    [{ ...message, train: { ...message.train, batch_size: 0 } }, /RegisterReply\.run_spec\.train\.batch_size must be a positive integer/],
    [{ ...message, data_root: '' }, /RegisterReply\.run_spec\.data_root is required/],
    [{ ...message, train: null }, /RegisterReply\.run_spec\.train is missing/],
    [{ ...message, evaluation: null }, /RegisterReply\.run_spec\.evaluation is missing/],
    [{ ...message, evaluation: { ...message.evaluation, attack: 'cw' } }, /RegisterReply\.run_spec\.evaluation\.attack must be one of none\|fgsm\|pgd.*, got "cw"/],
    [{ ...message, model_sha256: 'xyz' }, /RegisterReply\.run_spec\.model_sha256 is not a SHA-256/],
  ];
  for (const [bad, pattern] of cases) assert.throws(() => decodeRunSpec(overTheWire(bad)), pattern);
});

test('no drift between the schema and run.proto: every field is set and read, and a spec with no default value survives', () => {
  const spec = parseRunSpec({
    model: '/m',
    data: { root: '/d', splitFile: '/s.json', datasetName: 'N' },
    template: 'x {}',
    shots: 3,
    train: {
      method: 'clip-lora',
      seed: 7,
      lora: { rank: 4, alpha: 3, rslora: true, dropout: 0.5, targets: ['fc1'], towers: ['text'], layers: [1], init: 'gaussian' },
      epsilon: 0.5,
      perturbation: 'per-sample',
      deltaStep: 'grad',
      lrDelta: 0.125,
      loraUpdate: 'gauss-seidel',
      optimizer: 'sgd',
      lr: 0.5,
      schedule: 'constant',
      weightDecay: 0.25,
      iters: 9,
      batchSize: 5,
      chunkSize: 3,
      augment: 'none',
      sync: 'local-delta',
      cleanLoss: false,
      resetDeltaEachEpoch: true,
    },
    evaluation: { every: 4, attack: 'fgsm', limit: 17, epsilon: 0.25, steps: 3 },
  });
  const message = encodeRunSpec({ spec, ...identity });
  const received = overTheWire(message);
  // the message as parsed (every proto field, defaults filled) has exactly the fields encodeRunSpec sets
  const keys = (o: object) => Object.keys(o).sort();
  assert.deepEqual(keys(received), keys(message));
  assert.deepEqual(keys(received.train!), keys(message.train!));
  assert.deepEqual(keys(received.train!.lora!), keys(message.train!.lora!));
  assert.deepEqual(keys(received.evaluation!), keys(message.evaluation!));
  assert.deepEqual(decodeRunSpec(received).spec, spec);
});

test('the aggregation rule stays with the coordinator: workers compute the same whatever it is', () => {
  const spec = parseRunSpec({ model: '/m', data: { root: '/d' }, train: { sync: 'local-delta', aggregation: { rule: 'median', trim: 2 } } });
  assert.deepEqual(decodeRunSpec(overTheWire(encodeRunSpec({ spec, ...identity }))).spec.train.aggregation, { rule: 'mean', trim: 1 });
});
