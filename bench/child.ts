/**
 * Runs a measuring child process: stdout is collected (its JSON is the
 * result), stderr goes to ours line by line with a prefix (progress), and a
 * timeout ends it (SIGTERM, then SIGKILL) instead of hanging the suite.
 */
import { spawn } from 'node:child_process';

export interface ChildRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** the last 4000 characters of stderr */
  readonly stderrTail: string;
  readonly seconds: number;
  readonly timedOut: boolean;
}

export interface ChildOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
  /** prefix of its forwarded stderr lines */
  readonly label: string;
  readonly log: (message: string) => void;
}

export function runChild(command: string, args: readonly string[], o: ChildOptions): Promise<ChildRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let pending = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const text = d.toString();
      stderrTail = (stderrTail + text).slice(-4000);
      const lines = (pending + text).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) o.log(`  [${o.label}] ${line}`);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    }, o.timeoutMs);
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (pending.trim()) o.log(`  [${o.label}] ${pending}`);
      resolve({ code, signal, stdout, stderrTail, seconds: (performance.now() - started) / 1000, timedOut });
    };
    child.once('error', (err) => {
      stderrTail += String(err);
      finish(null, null);
    });
    child.once('close', finish);
  });
}

/** Every line of stdout that parses as a JSON object. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** A stderr line as a reader wants it: the message of a JSON log line, else the line. */
function messageOf(line: string): string {
  try {
    const json = JSON.parse(line) as { msg?: unknown };
    if (typeof json.msg === 'string') return json.msg;
  } catch {
    // not a JSON log line
  }
  return line;
}

/** Why a run gave no result, in one line. */
export function failureOf(run: ChildRun): string {
  if (run.timedOut) return `timed out after ${run.seconds.toFixed(0)} s`;
  const last = run.stderrTail.trim().split('\n').filter(Boolean).at(-1) ?? '';
  return `exited ${run.signal ?? run.code}${last ? `: ${messageOf(last).slice(0, 300)}` : ''}`;
}
