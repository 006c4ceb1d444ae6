/**
 * The `advclip bench step --json` contract: one JSON object with
 * seconds_per_step, backend and workers — 0 in process, with no network
 * figures; N through N local worker processes, with what the coordinator
 * counted per step: bytes of the tasks sent and the results received (at
 * least the δ gradients the results must carry) and the rounds' time
 * outside the workers' compute, within the step.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { archConfig } from '../../services/core/presets.ts';
import { runCli } from '../helpers/cli.ts';

const TINY_STEP = ['bench', 'step', '--arch', 'tiny', '--batch', '8', '--chunk-size', '2', '--tau', '1', '--steps', '2', '--json'];

const benchJson = async (args: readonly string[]): Promise<Record<string, number | string>> => {
  const run = await runCli(args, { timeoutMs: 180_000 });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
};

test('bench step in process reports workers 0 and no network figures', async () => {
  const json = await benchJson(TINY_STEP);
  assert.equal(json.workers, 0);
  assert.ok((json.seconds_per_step as number) > 0);
  assert.equal(typeof json.backend, 'string');
  assert.deepEqual(Object.keys(json).filter((k) => /network|bytes/.test(k)), []);
});

test('bench step --workers 1 reports the bytes and network time of a step as the coordinator counted them', async () => {
  const json = (await benchJson([...TINY_STEP, '--workers', '1'])) as Record<string, number>;
  assert.equal(json.workers, 1);
  assert.match(String(json.backend), /^(node-gpu|node|native|wasm|cpu)$/, 'the backend the worker computed on, not the coordinator\'s flag');
  assert.ok(json.network_bytes_sent_per_step > 0);
  assert.equal(json.network_bytes_per_step, json.network_bytes_sent_per_step + json.network_bytes_received_per_step);
  // τ = 1 δ round: each of the 4 chunks sends back a float32 gradient of δ, [32, 32, 3]
  const size = archConfig('tiny').vision.imageSize;
  assert.ok(json.network_bytes_received_per_step > 4 * size * size * 3 * 4, `${json.network_bytes_received_per_step} bytes received`);
  assert.ok(json.network_seconds_per_step >= 0 && json.network_seconds_per_step < json.seconds_per_step, JSON.stringify(json));
  assert.ok(json.compute_seconds_per_step > 0 && json.adapter_bytes_per_version > 0, JSON.stringify(json));
  // τ δ-rounds, the LoRA round and the text round
  assert.equal(json.rounds_per_step, 1 + 2);
  assert.ok(json.round_overhead_seconds >= 0 && json.round_overhead_seconds * json.rounds_per_step <= json.seconds_per_step, JSON.stringify(json));
});

test('the contract: bench step --workers 64 runs on this machine (replicas of one process per core) and reports rounds per step and the overhead per round', async () => {
  const json = (await benchJson(['bench', 'step', '--arch', 'tiny', '--batch', '64', '--tau', '2', '--steps', '3', '--workers', '64', '--json'])) as Record<string, number>;
  assert.equal(json.workers, 64);
  assert.equal(json.steps, 3);
  assert.equal(json.rounds_per_step, 2 + 2);
  assert.ok(json.round_overhead_seconds >= 0 && json.round_overhead_seconds * json.rounds_per_step <= json.seconds_per_step, JSON.stringify(json));
  // the coordinator's own parts of the overhead, and its CPU, are within it
  for (const part of ['round_publish_seconds', 'round_encode_seconds', 'round_decode_seconds']) assert.ok(json[part] >= 0 && json[part] <= json.round_overhead_seconds, `${part}: ${JSON.stringify(json)}`);
  assert.ok(json.coordinator_cpu_seconds_per_round > 0, JSON.stringify(json));
});
