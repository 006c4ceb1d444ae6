import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { advclipProto } from '../../../services/protocol/proto-loader.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const checkedIn = join(root, 'services/protocol/generated');

const listFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)))
    .sort();

test('the checked-in generated types equal a fresh generation from proto/', () => {
  const fresh = mkdtempSync(join(tmpdir(), 'advclip-gen-'));
  try {
    execFileSync('bash', [join(root, 'scripts/gen-proto.sh'), fresh], { cwd: root, stdio: 'pipe' });
    const files = listFiles(fresh);
    assert.deepEqual(listFiles(checkedIn), files, 'run scripts/gen-proto.sh: the file set drifted');
    for (const file of files) {
      assert.equal(
        readFileSync(join(checkedIn, file), 'utf8'),
        readFileSync(join(fresh, file), 'utf8'),
        `services/protocol/generated/${file} drifted from proto/: run scripts/gen-proto.sh`,
      );
    }
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('the loaded service has the four RPCs with the streaming shape the types promise', () => {
  const service = advclipProto().Coordinator.service;
  assert.deepEqual(Object.keys(service).sort(), ['GetAdapter', 'GetRun', 'Register', 'Work']);
  assert.equal(service.Work.requestStream, true);
  assert.equal(service.Work.responseStream, true);
  assert.equal(service.Register.requestStream || service.Register.responseStream, false);
});

test('loader options: snake_case names, numbers for 64-bit ints, enum names, defaults and oneof markers', () => {
  const rpc = advclipProto().Coordinator.service.Work;
  const wire = rpc.responseSerialize({ task: { task_id: 't', step: 2 ** 40, round_kind: 'LORA_GRAD', seeds: { seed: 9 } } });
  const message = rpc.responseDeserialize(wire);
  assert.equal(message.body, 'task');
  const task = message.task!;
  assert.equal(task.step, 2 ** 40);
  assert.equal(task.round_kind, 'LORA_GRAD');
  assert.equal(task.seeds?.seed, 9);
  assert.equal(task.delta, null);
  assert.deepEqual(task.chunks, []);
  assert.equal(task.deadline_ms, 0);
});
