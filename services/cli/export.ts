/**
 * `advclip export --merge`: a full HF CLIPModel directory with the LoRA
 * adapter merged into the weights (W = W0 + s·B·A), loadable without PEFT.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../core/errors.ts';
import { mergeLora } from '../core/lora.ts';
import { loadClipModelDir, writeClipModelDir } from '../io/model-dir.ts';
import { loadAdapter } from '../io/peft.ts';
import type { CommandSpec, FlagValues } from './args.ts';
import type { Logger } from '../protocol/log.ts';

export const exportCommand: CommandSpec = {
  name: 'export',
  summary: 'Merge a LoRA adapter into a full HF CLIP checkpoint',
  usage: 'advclip export --model DIR --adapter ADAPTER_DIR --out DIR --merge [--dtype F32|F16] [--json]',
  flags: {
    model: { type: 'string', arg: 'DIR', required: true, help: 'the base HF CLIPModel directory or a Hub repo id owner/name[@revision], fetched into the HF cache (HF_HOME; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE=1)' },
    adapter: { type: 'string', arg: 'ADAPTER_DIR', required: true, help: 'PEFT LoRA adapter' },
    out: { type: 'string', arg: 'DIR', required: true, help: 'where the merged model goes' },
    merge: { type: 'boolean', help: 'merge the adapter into the weights (the only export there is)' },
    dtype: { type: 'string', default: 'F32', choices: ['F32', 'F16'], help: 'weight dtype on disk' },
    json: { type: 'boolean', help: 'print one JSON object on stdout' },
  },
};

export async function runExport(flags: FlagValues, _argv: readonly string[], log: Logger): Promise<void> {
  if (!flags.merge) throw invalidArgument('advclip export needs --merge (a PEFT adapter directory is already the unmerged export)');
  const base = await loadClipModelDir(flags.model as string);
  const lora = await loadAdapter(flags.adapter as string, base.config);
  const out = flags.out as string;
  await writeClipModelDir(out, {
    config: base.config,
    weights: mergeLora(base.weights, lora),
    preprocessor: base.preprocess,
    dtype: flags.dtype as 'F32' | 'F16',
  });
  if (base.tokenizerPath) await copyFile(base.tokenizerPath, join(out, 'tokenizer.json'));
  const result = { out, merged_layers: lora.sites.length, dtype: flags.dtype };
  if (flags.json) process.stdout.write(JSON.stringify(result) + '\n');
  else log.info(`wrote merged model to ${out}`, { merged_layers: lora.sites.length });
}
