/**
 * `advclip train`: AdvCLIP-LoRA (or CLIP-LoRA) in one process. Writes the
 * PEFT adapter and train.json (the configuration and the loss history).
 */
import type { Logger } from '../protocol/log.ts';
import { trainLocally } from '../run/steps.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import { checkpointFlags, checkpointOptionsFrom, runSpecFrom, trainFlags } from './train-flags.ts';

export const trainCommand: CommandSpec = {
  name: 'train',
  summary: 'Fine-tune CLIP with AdvCLIP-LoRA or CLIP-LoRA in this process',
  usage: 'advclip train --model DIR --data DIR --shots K --seed S --method advclip-lora|clip-lora [--iters N] [--epsilon 1/255] [--tau 2] [--eval-every N [--eval-attack none|fgsm|pgd] [--eval-limit M]] [--checkpoint-dir DIR [--checkpoint-every N]] --out ADAPTER_DIR [--json]',
  flags: { ...trainFlags, ...checkpointFlags },
};

export async function runTrain(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  const options = { run: runSpecFrom(flags), out: flags.out as string, backend: flags.backend as string | undefined, checkpoints: checkpointOptionsFrom(flags), json: flags.json === true };
  const summary = await trainLocally(options, log);
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else log.info(`wrote ${summary.out}`, { final_loss: summary.final?.loss });
}
