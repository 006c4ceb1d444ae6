/**
 * SIGTERM while the coordinator waits for workers: the step in progress
 * cannot finish (no worker will compute its rounds), so it is given up and
 * the coordinator writes what the finished steps made and exits 0, instead
 * of waiting until the orchestrator's grace period ends in SIGKILL (compose
 * waits 2 minutes, Kubernetes 30 s by default).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, REPO } from '../helpers/cli.ts';
import { scratch, TINY } from './cluster-harness.ts';

test('SIGTERM while no worker is there gives the step up, writes the outputs of the steps done and exits 0', async (t) => {
  const tmp = scratch();
  try {
    const out = join(tmp.dir, 'adapter');
    const child = spawn(process.execPath, [BIN, 'coordinator', ...TINY, '--listen', '127.0.0.1:0', '--insecure', '--metrics-port', '0', '--out', out], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    t.signal.addEventListener('abort', () => child.kill('SIGKILL'), { once: true });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // the event, not a sleep: the coordinator says it waits for workers
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        if (stderr.includes('waiting for workers')) resolve();
      });
    });
    child.kill('SIGTERM');
    const code = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /step given up: stopping with 0 live workers/);
    assert.match(stderr, /stopped after 0 of 3 steps/);
    const trained = JSON.parse(readFileSync(join(out, 'train.json'), 'utf8'));
    assert.equal(trained.iters, 0, 'no step counted: the one given up is not half-applied');
    assert.deepEqual(trained.history, []);
  } finally {
    tmp.done();
  }
});
