/** Runs the `advclip` command as a user would, capturing stdout, stderr and the exit code. */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/advclip.mjs', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunCliOptions {
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /**
   * Kills the command when aborted: pass the test's `t.signal`, which aborts
   * at the test's timeout, so how long a command takes is never the verdict.
   * Without it, a command still running after `timeoutMs` (default 10 min,
   * a hang, not a slow machine) is killed.
   */
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export function runCli(args: readonly string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const kill = () => child.kill('SIGKILL');
    const timer = opts.signal ? undefined : setTimeout(kill, opts.timeoutMs ?? 600_000);
    opts.signal?.addEventListener('abort', kill, { once: true });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Each command line through runCli, as many at a time as there are cores (more only slow each other down). */
export async function runCliEach(argsList: readonly (readonly string[])[], opts: RunCliOptions = {}): Promise<CliResult[]> {
  const results: CliResult[] = new Array(argsList.length);
  let next = 0;
  const lane = async () => {
    while (next < argsList.length) {
      const i = next++;
      results[i] = await runCli(argsList[i], opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(availableParallelism(), argsList.length) }, lane));
  return results;
}

export function maxAbsDiff(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): number {
  let m = 0;
  a.forEach((row, i) => row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}

export const maxAbs = (a: readonly (readonly number[])[]): number => Math.max(...a.flat().map(Math.abs));
