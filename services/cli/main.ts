/**
 * `advclip` — the command line. Each command is a flag table plus a run
 * function; this file dispatches, prints --help and --version, and turns
 * errors into one readable line on stderr and an exit code: 2 for a command
 * line it cannot read, 1 for a failure of the command (a stack trace only
 * with ADVCLIP_DEBUG=1).
 */
import { AdvclipError } from '../core/errors.ts';
import { createLogger, type Logger } from '../protocol/log.ts';
import { helpText, parseFlags, UsageError, type CommandSpec, type FlagValues } from './args.ts';
import { embedCommand, runEmbed } from './embed.ts';
import { packageVersion } from './version.ts';
import { runTrain, trainCommand } from './train.ts';
import { evalCommand, runEval } from './eval.ts';
import { exportCommand, runExport } from './export.ts';
import { coordinatorCommand, runCoordinator } from './coordinator.ts';
import { runWorker, workerCommand } from './worker.ts';
import { clusterCommand, runCluster } from './cluster.ts';
import { demoCommand, runDemo } from './demo.ts';
import { benchCommand, runBench } from './bench.ts';
import { adapterCommand, runAdapter } from './adapter.ts';
import { runSweepCommand, sweepCommand } from './sweep.ts';

interface Command {
  readonly spec: CommandSpec;
  readonly run: (flags: FlagValues, argv: readonly string[], log: Logger) => Promise<void>;
}

const commands: readonly Command[] = [
  { spec: embedCommand, run: runEmbed },
  { spec: trainCommand, run: runTrain },
  { spec: evalCommand, run: runEval },
  { spec: exportCommand, run: runExport },
  { spec: coordinatorCommand, run: runCoordinator },
  { spec: workerCommand, run: runWorker },
  { spec: clusterCommand, run: runCluster },
  { spec: sweepCommand, run: runSweepCommand },
  { spec: demoCommand, run: runDemo },
  { spec: benchCommand, run: runBench },
  { spec: adapterCommand, run: runAdapter },
];

function usage(): string {
  const rows = commands.map((c) => `  ${c.spec.name.padEnd(12)} ${c.spec.summary}`);
  return `advclip — adversarially robust LoRA fine-tuning of CLIP (AdvCLIP-LoRA), in one process or as a cluster\n\nusage: advclip <command> [flags]   (advclip <command> --help for its flags; advclip --version)\n\n${rows.join('\n')}\n`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`advclip ${packageVersion()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.spec.name === name);
  const log = createLogger({ debug: process.env.ADVCLIP_DEBUG === '1' });
  if (!command) {
    log.error(`unknown command "${name}"; run advclip --help`);
    return 2;
  }
  try {
    const flags = parseFlags(command.spec, rest);
    if (flags.help) {
      process.stdout.write(helpText(command.spec));
      return 0;
    }
    await command.run(flags, rest, log);
    return 0;
  } catch (err) {
    if (err instanceof AdvclipError) {
      log.error(err.message, { code: err.code });
    } else {
      log.error(`internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (process.env.ADVCLIP_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
