/**
 * Real processes for the fault tests: `advclip coordinator` and `advclip
 * worker` on loopback (plaintext, free ports), a supervisor that restarts
 * workers that die, /metrics scrapes, and the adapter comparison. Every
 * process started here is killed by `killAll` (the tests call it in
 * `after`, so a failing test leaves nothing behind).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseExposition } from '../../services/protocol/exposition.ts';
import { listCheckpoints } from '../../services/io/checkpoint.ts';
import { readSafetensors } from '../../services/io/safetensors.ts';
import { BIN, REPO, runCli, type CliResult } from '../helpers/cli.ts';

const started = new Set<ChildProcess>();

/** SIGKILLs every process these helpers started that is still there (SIGCONT first: a stopped one). */
export function killAll(): void {
  for (const p of started) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGCONT');
      p.kill('SIGKILL');
    }
  }
  started.clear();
}
process.once('exit', killAll);
// a test file interrupted (Ctrl-C, a runner's timeout) leaves no coordinator or worker behind either
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

export interface Proc {
  readonly child: ChildProcess;
  /** stderr so far */
  log(): string;
  /** exit code, or the signal name */
  readonly exited: Promise<number | string>;
  /** resolves with the first match of `pattern` in stderr; rejects if the process ends without one (no deadline: the test's timeout bounds a hang) */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  readonly alive: boolean;
}

function spawnAdvclip(args: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(child);
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stderr!.on('data', (d) => {
    stderr += d;
    for (const l of [...listeners]) l();
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
    log: () => stderr,
    exited,
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(stderr);
          if (!m) return false;
          listeners.delete(onData);
          resolve(m);
          return true;
        };
        const onData = () => void check();
        if (!check()) listeners.add(onData);
        // closed: the process has exited and its stderr is read to the end
        void closed.then(() => {
          if (listeners.delete(onData)) reject(new Error(`exited before ${pattern}; stderr:\n${stderr.slice(-3000)}`));
        });
      }),
  };
}

export interface CoordinatorProc extends Proc {
  readonly address: string;
  readonly metricsUrl: string;
  /** "event":"step" lines so far */
  steps(): number;
}

/** `advclip coordinator ARGS --json` on free loopback ports; resolves once it listens. */
export async function startCoordinator(args: readonly string[]): Promise<CoordinatorProc> {
  const p = spawnAdvclip(['coordinator', ...args, '--listen', '127.0.0.1:0', '--metrics-port', '0', '--insecure', '--json']);
  const m = await p.waitFor(/coordinator listening on (127\.0\.0\.1:\d+)".*?"metrics":"(http:\/\/[^"]+)"/);
  return Object.assign(p, { address: m[1], metricsUrl: m[2], steps: () => p.log().match(/"event":"step"/g)?.length ?? 0 });
}

export interface WorkerProc extends Proc {
  readonly name: string;
}

export function startWorker(address: string, name: string, extra: readonly string[] = [], env: Record<string, string> = {}): WorkerProc {
  return Object.assign(spawnAdvclip(['worker', '--coordinator', address, '--insecure', '--metrics-port', '0', '--name', name, ...extra], env), { name });
}

/** Keeps `n` workers running: one that exits while supervising is replaced by a new one. */
export class Supervisor {
  readonly all: WorkerProc[] = [];
  #seq = 0;
  #stopped = false;

  constructor(
    private readonly address: string,
    n: number,
    private readonly extra: readonly string[] = [],
    private readonly env: Record<string, string> = {},
  ) {
    for (let i = 0; i < n; i++) this.#spawn();
  }

  get live(): WorkerProc[] {
    return this.all.filter((w) => w.alive);
  }

  /** Workers that logged `ready` (registered and set up) and are alive. */
  get ready(): WorkerProc[] {
    return this.live.filter((w) => /"msg":"ready"/.test(w.log()));
  }

  /** Stops replacing workers (they drain by themselves when the run ends). */
  stop(): void {
    this.#stopped = true;
  }

  #spawn(): void {
    const w = startWorker(this.address, `sup-${++this.#seq}`, this.extra, this.env);
    this.all.push(w);
    void w.exited.then(() => {
      if (!this.#stopped) this.#spawn();
    });
  }
}

/** One sample of a Prometheus metric (0 when absent). */
export async function scrape(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(url)).text();
  const family = parseExposition(text).get(name.replace(/_total$/, '')) ?? parseExposition(text).get(name);
  const sample = family?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return sample?.value ?? 0;
}

/**
 * Polls until `condition` holds (a log line, a metric, a process state: what
 * the harness can observe). No deadline of its own — on a loaded machine any
 * fixed one became the verdict; the test's timeout bounds a hang. A wait
 * past a minute prints one line naming `what` (a diagnostic, not a verdict).
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string | (() => string)): Promise<void> {
  const since = Date.now();
  let told = false;
  while (!(await condition())) {
    if (!told && Date.now() - since > 60_000) {
      told = true;
      process.stderr.write(`still waiting for ${typeof what === 'string' ? what : what()} after a minute\n`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Largest |a − b| over every tensor of two PEFT adapters, and whether the files are byte-identical. */
export function compareAdapters(dirA: string, dirB: string): { maxAbsDiff: number; bitwise: boolean } {
  const bytesA = readFileSync(join(dirA, 'adapter_model.safetensors'));
  const bytesB = readFileSync(join(dirB, 'adapter_model.safetensors'));
  const a = readSafetensors(bytesA, dirA);
  const b = readSafetensors(bytesB, dirB);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let maxAbsDiff = 0;
  for (const [name, t] of a) t.data.forEach((v, i) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - b.get(name)!.data[i]))));
  return { maxAbsDiff, bitwise: bytesA.equals(bytesB) };
}

/**
 * The fault-free reference: `advclip train ARGS --out OUT`, checkpointing every step into `OUT-ckpt`
 * so that `lastStepChange` can see what its last step did (checkpoints do not change the adapter:
 * faults-train-resume).
 */
export function trainReference(args: readonly string[], out: string): Promise<CliResult> {
  return runCli(['train', ...args, '--out', out, '--checkpoint-dir', `${out}-ckpt`, '--checkpoint-every', '1']);
}

/** max |Δ| of the LoRA tensors between the newest two checkpoints of `dir`: what the last step moved. */
export async function lastStepChange(dir: string): Promise<number> {
  const [last, previous] = await listCheckpoints(dir);
  assert.ok(last && previous, `two checkpoints in ${dir}`);
  const a = readSafetensors(readFileSync(last.path), last.path);
  const b = readSafetensors(readFileSync(previous.path), previous.path);
  let max = 0;
  for (const [name, t] of a) {
    if (!name.startsWith('lora.')) continue;
    t.data.forEach((v, i) => (max = Math.max(max, Math.abs(v - b.get(name)!.data[i]))));
  }
  return max;
}

export interface FaultVerdict {
  readonly maxAbsDiff: number;
  readonly bitwise: boolean;
  /** max |Δ| of the reference's last step */
  readonly lastStep: number;
  /** for the test's diagnostic line */
  readonly summary: string;
}

/**
 * The claim of every fault test: the faulty run's adapter is byte-for-byte the reference's, and the
 * reference's last step moved the adapter (so a lost or doubled late step would show).
 */
export async function assertBitwiseWithReference(referenceOut: string, clusterOut: string): Promise<FaultVerdict> {
  const { maxAbsDiff, bitwise } = compareAdapters(referenceOut, clusterOut);
  const lastStep = await lastStepChange(`${referenceOut}-ckpt`);
  const summary = `max |Δ| vs advclip train ${maxAbsDiff}${bitwise ? ' (bitwise equal)' : ' (NOT bitwise equal)'}; the last step moved the adapter by max |Δ| ${lastStep}`;
  assert.ok(lastStep > 0, `the reference's last step moved nothing: ${summary}`);
  assert.ok(bitwise, `the adapter differs from the fault-free run: ${summary}`);
  return { maxAbsDiff, bitwise, lastStep, summary };
}
