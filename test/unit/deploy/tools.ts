/**
 * External validators the deploy tests run when they are installed
 * (docker-compose, kubectl, promtool, prometheus); a test that needs a
 * missing one fails under CI=true and is skipped loudly elsewhere
 * (test/helpers/requires.ts).
 */
import { spawnSync } from 'node:child_process';
import { executable, requiresBinary } from '../../helpers/requires.ts';

export const repoRoot = new URL('../../../', import.meta.url).pathname;

/** Absolute path of an executable on PATH (or in an sbin directory), or undefined: the one lookup requires.ts skips by. */
export const onPath = executable;

/** The skip option of node:test for a missing tool (a failure under CI=true), or false when it is there. */
export function skipUnless(name: string, why: string): string | false {
  return requiresBinary(name, why);
}

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(command: string, args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(command, args, { cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
