/**
 * `advclip sweep --grid GRID.yaml`: every run of a grid of training flags
 * on one pool of workers (run/sweep.ts). With --workers N the pool is
 * started here, as `advclip cluster` starts one; without it, workers join
 * from elsewhere (`advclip worker --coordinator HOST:PORT`) at --listen.
 * This file reads the grid's runs as `advclip train` reads its flags, once.
 */
import { readFile } from 'node:fs/promises';
import { invalidArgument } from '../core/errors.ts';
import type { Logger } from '../protocol/log.ts';
import { expandGrid, flagsAsArgv, parseGrid } from '../run/sweep-grid.ts';
import { sweepOnLocalPool } from '../run/sweep-local.ts';
import { runSweep, type SweepRun } from '../run/sweep.ts';
import { parseFlags, UsageError, type CommandSpec, type FlagValues } from './args.ts';
import { coordinatorTuningFlags, distributedTrainFlags, tuningFrom } from './coordinator.ts';
import { backendFlag, runSpecFrom } from './train-flags.ts';
import { clusterTokenFrom, metricsFlags, securityFrom, tlsFlags } from './transport-flags.ts';

export const sweepCommand: CommandSpec = {
  name: 'sweep',
  summary: 'Train every run of a grid (data sets × shots × seeds × methods × any training flag) on one pool of workers',
  usage: 'advclip sweep --grid GRID.yaml [--workers N [--insecure] | --listen HOST:PORT (--tls-ca F --tls-cert F --tls-key F | --insecure)] [--concurrency R] [--out DIR] [--json]',
  flags: {
    grid: { type: 'string', arg: 'GRID.yaml', required: true, help: 'base: training flags every run shares; grid: flag → list of values (names and units of advclip train); the runs are the cartesian product' },
    workers: { type: 'int', arg: 'N', help: 'start a local pool of N workers, as advclip cluster does (without it: workers join at --listen)' },
    concurrency: { type: 'int', arg: 'R', help: 'runs trained at once (default: enough to keep the pool busy, ceil(workers / chunks per round) + 1, at least 2)' },
    out: { type: 'string', default: 'results', arg: 'DIR', help: 'results: runs/<run-id>/ (adapter, train.json, checkpoints/), sweep.json, sweep.md' },
    'checkpoint-every': { type: 'int', default: 50, arg: 'N', help: 'steps between a run’s checkpoints (one more when it ends or the sweep drains); a sweep started again resumes from them' },
    listen: { type: 'string', default: '127.0.0.1:50051', arg: 'HOST:PORT', help: 'without --workers: gRPC address external workers join (port 0: any free port)' },
    ...tlsFlags,
    ...metricsFlags,
    backend: backendFlag,
    ...coordinatorTuningFlags,
    json: { type: 'boolean', help: 'the summary as one JSON object on stdout' },
  },
};

/** A grid run's flags, read as `advclip cluster` reads its own (the defaults, the checks and the messages of advclip train). */
const runFlagsCommand: CommandSpec = {
  name: 'sweep',
  summary: '',
  usage: '',
  flags: { ...distributedTrainFlags, out: { ...distributedTrainFlags.out, required: false } },
};

/** The runs of a grid file: ids, flags and RunSpecs; a bad value names the run and the flag. */
export async function sweepRunsFrom(path: string): Promise<SweepRun[]> {
  const text = await readFile(path, 'utf8').catch((err: Error) => {
    throw invalidArgument(`--grid ${path}: ${err.message}`);
  });
  return expandGrid(parseGrid(text, path)).map((r) => {
    try {
      const flags = parseFlags(runFlagsCommand, flagsAsArgv(r.flags));
      return { id: r.id, run: runSpecFrom(flags, flags.sync as string), flags: r.flags, varied: r.varied };
    } catch (err) {
      const message = (err as Error).message.replace(/^advclip sweep: |^sweep: /, '').replace(/ \(see (advclip sweep )?--help\)$/, '');
      throw err instanceof UsageError ? new UsageError(`--grid ${path}, run ${r.id}: ${message}`) : invalidArgument(`--grid ${path}, run ${r.id}: ${message}`);
    }
  });
}

export async function runSweepCommand(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const grid = flags.grid as string;
  const runs = await sweepRunsFrom(grid);
  const workers = flags.workers as number | undefined;
  const concurrency = flags.concurrency as number | undefined;
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) throw invalidArgument(`--concurrency must be ≥ 1, got ${concurrency}`);
  const checkpointEvery = flags['checkpoint-every'] as number;
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 1) throw invalidArgument(`--checkpoint-every must be ≥ 1, got ${checkpointEvery}`);
  const common = {
    runs,
    grid,
    out: flags.out as string,
    concurrency,
    backend: flags.backend as string | undefined,
    metrics: { port: flags['metrics-port'] as number, host: flags['metrics-host'] as string },
    checkpointEvery,
    ...tuningFrom(flags),
  };
  log.info(`sweep ${grid}: ${runs.length} runs`, { runs: runs.map((r) => r.id) });
  const summary =
    workers !== undefined
      ? await sweepOnLocalPool({ ...common, workers, insecure: flags.insecure === true }, log)
      : await runSweep({ ...common, listen: flags.listen as string, security: securityFrom(flags), clusterToken: clusterTokenFrom(flags) }, log);
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else log.info(`sweep: ${summary.done} of ${summary.runs} runs done (${summary.skipped} earlier), results in ${summary.out}/sweep.md`, { failed: summary.failed, runs_per_hour: summary.runs_per_hour });
}
