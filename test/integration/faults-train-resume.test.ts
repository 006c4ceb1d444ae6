/**
 * `advclip train` with the coordinator's checkpoints: a run resumed from an
 * earlier checkpoint of the same directory ends bitwise equal to one that
 * never stopped; a checkpoint of another configuration is refused with a
 * clear error and exit code 1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { listCheckpoints } from '../../services/io/checkpoint.ts';
import { runCli } from '../helpers/cli.ts';
import { TINY } from './cluster-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'advclip-faults-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ARGS = [...TINY, '--iters', '12'];
const adapter = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));

test('advclip train resumes from its newest valid checkpoint bit-identically; another configuration is refused', async (t) => {
  const ckpt = join(tmp, 'ckpt');
  const [plain, first] = await Promise.all([
    runCli(['train', ...ARGS, '--out', join(tmp, 'plain')]),
    runCli(['train', ...ARGS, '--out', join(tmp, 'first'), '--checkpoint-dir', ckpt, '--checkpoint-every', '4']),
  ]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual((await listCheckpoints(ckpt)).map((c) => c.step), [12, 8, 4]);
  for (const c of (await listCheckpoints(ckpt)).slice(0, 2)) rmSync(c.path);

  const resumed = await runCli(['train', ...ARGS, '--out', join(tmp, 'resumed'), '--checkpoint-dir', ckpt, '--checkpoint-every', '4']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming from \S*checkpoint-00000004\.safetensors at step 4/);
  assert.ok(adapter(join(tmp, 'resumed')).equals(adapter(join(tmp, 'plain'))), 'resumed at step 4: bitwise the adapter of the run that never stopped');

  const other = await runCli(['train', ...TINY, '--iters', '13', '--out', join(tmp, 'other'), '--checkpoint-dir', ckpt]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /checkpoint-00000012\.safetensors: checkpoint of a different run configuration .*use another --checkpoint-dir/);
  t.diagnostic('advclip train: resumed from step 4 of 12, bitwise equal; a checkpoint of --iters 12 refused for --iters 13');
});
