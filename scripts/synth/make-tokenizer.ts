/**
 * Trains the BPE tokenizer on the pretraining captions and writes a Hugging
 * Face CLIP tokenizer directory:
 *   npx tsx scripts/synth/make-tokenizer.ts --out models/<name> [--seed 0] [--captions 20000] [--vocab-size 2048] [--max-length 32]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { trainBpe, type BpeModel } from './bpe.ts';
import { generateCaptions } from './corpus.ts';
import { tokenizerFiles } from './tokenizer-json.ts';

export interface TokenizerOptions {
  /** the pretraining run seed whose captions the merges are learned from */
  readonly seed: number;
  readonly captions: number;
  readonly vocabSize: number;
}

export const DEFAULT_TOKENIZER_OPTIONS: TokenizerOptions = { seed: 0, captions: 20000, vocabSize: 2048 };

export function trainCaptionTokenizer(options: TokenizerOptions = DEFAULT_TOKENIZER_OPTIONS): BpeModel {
  return trainBpe(generateCaptions(options.seed, options.captions), { vocabSize: options.vocabSize });
}

export function writeTokenizer(dir: string, model: BpeModel, modelMaxLength: number): string[] {
  mkdirSync(dir, { recursive: true });
  const files = tokenizerFiles(model, modelMaxLength);
  for (const [name, contents] of Object.entries(files)) writeFileSync(join(dir, name), contents);
  return Object.keys(files).map((name) => join(dir, name));
}

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      seed: { type: 'string', default: String(DEFAULT_TOKENIZER_OPTIONS.seed) },
      captions: { type: 'string', default: String(DEFAULT_TOKENIZER_OPTIONS.captions) },
      'vocab-size': { type: 'string', default: String(DEFAULT_TOKENIZER_OPTIONS.vocabSize) },
      'max-length': { type: 'string', default: '32' },
    },
  });
  if (values.out === undefined) throw new Error('make-tokenizer: --out <dir> is required');
  const model = trainCaptionTokenizer({
    seed: Number(values.seed), captions: Number(values.captions), vocabSize: Number(values['vocab-size']),
  });
  const written = writeTokenizer(values.out, model, Number(values['max-length']));
  console.log(JSON.stringify({ event: 'tokenizer_written', vocab_size: model.vocab.size, merges: model.merges.length, files: written }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
