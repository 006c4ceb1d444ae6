import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureOf, jsonLines, type ChildRun } from '../../../bench/child.ts';

const run = (over: Partial<ChildRun>): ChildRun => ({ code: 1, signal: null, stdout: '', stderrTail: '', seconds: 3, timedOut: false, ...over });

test('the JSON objects of a child’s stdout, skipping other lines and broken JSON', () => {
  const out = 'progress 10%\n{"n": 1024, "gflops": 40.5}\n{broken\n  {"n": 2048, "gflops": 41}\n';
  assert.deepEqual(jsonLines(out), [{ n: 1024, gflops: 40.5 }, { n: 2048, gflops: 41 }]);
});

test('a failed child is explained by its last stderr line, a JSON log line by its message', () => {
  const log = '{"level":"info","msg":"backend native"}\n{"level":"error","msg":"--workers must be ≥ 1, got 0","code":"INVALID_ARGUMENT"}\n';
  assert.equal(failureOf(run({ stderrTail: log })), 'exited 1: --workers must be ≥ 1, got 0');
  assert.equal(failureOf(run({ stderrTail: 'Traceback\nModuleNotFoundError: No module named torch\n' })), 'exited 1: ModuleNotFoundError: No module named torch');
  assert.equal(failureOf(run({ code: null, signal: 'SIGKILL' })), 'exited SIGKILL');
  assert.equal(failureOf(run({ timedOut: true, seconds: 600 })), 'timed out after 600 s');
});
