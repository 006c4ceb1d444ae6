/** `npm run bench -- --help` prints its usage and sections; an unknown flag says so and exits 2 without running anything. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const runBench = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { encoding: 'utf8', timeout: 60_000 });

test('bench --help lists the flags and every section, and exits 0', () => {
  const run = runBench('--help');
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^usage: npm run bench/);
  for (const flag of ['--quick', '--json', '--only']) assert.ok(run.stdout.includes(flag), flag);
  for (const section of ['kernel', 'step', 'torch', 'distributed', 'broadcast', 'memory']) assert.ok(run.stdout.includes(section), section);
});

test('bench with an unknown flag exits 2 with the usage, measuring nothing', () => {
  const run = runBench('--bogus');
  assert.equal(run.status, 2);
  assert.match(run.stderr, /Unknown option '--bogus'/);
  assert.match(run.stderr, /usage: npm run bench/);
  assert.equal(run.stdout, '');
});
