/**
 * CLIP's tokenizer, from a Hugging Face `tokenizer.json`.
 *
 * The BPE itself (NFC + whitespace collapse + lowercase, CLIP's split regex,
 * byte-level symbols, merges with the "</w>" end-of-word suffix) is run by
 * @huggingface/tokenizers, which we checked against an independent Python
 * implementation (scripts/fixtures/clip_bpe.py) on the fixtures' cases and
 * on thousands of random strings. What it does not do is truncation, so the
 * CLIP post-processing lives here: BOS + content cut to maxLength - 2 + EOS,
 * i.e. EOS is always kept last, as HF's `truncation=True` does.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { AdvclipError, dataLoss, invalidArgument } from '../core/errors.ts';
import { readJsonFile } from './hf-config.ts';

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

export interface EncodedBatch {
  /** one row per text, padded with `padTokenId` to the longest row */
  readonly ids: number[][];
  /** unpadded length of each row (BOS and EOS included) */
  readonly lengths: number[];
}

export class ClipTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  /** HF's CLIP tokenizer pads with <|endoftext|>; text pooling reads the first EOS, so what follows it never matters. */
  readonly padTokenId: number;
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;

  private constructor(tokenizer: Tokenizer, bos: number, eos: number, vocabSize: number) {
    this.tokenizer = tokenizer;
    this.bosTokenId = bos;
    this.eosTokenId = eos;
    this.padTokenId = eos;
    this.vocabSize = vocabSize;
  }

  static async fromFile(path: string): Promise<ClipTokenizer> {
    return ClipTokenizer.fromJson(await readJsonFile(path), path);
  }

  /** `source` names the file in error messages. */
  static fromJson(json: unknown, source: string): ClipTokenizer {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw dataLoss(`${source}: tokenizer.json must be an object`);
    const model = (json as { model?: { type?: unknown; vocab?: unknown } }).model;
    if (model?.type !== 'BPE' || typeof model.vocab !== 'object' || model.vocab === null) {
      throw dataLoss(`${source}: model.type must be "BPE" with a vocab (CLIP's byte-level BPE), got ${JSON.stringify(model?.type)}`);
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, {});
    } catch (cause) {
      throw new AdvclipError('DATA_LOSS', `${source}: cannot build a tokenizer (${(cause as Error).message})`, { cause });
    }
    const vocab = tokenizer.get_vocab(true);
    const idOf = (token: string): number => {
      const id = vocab.get(token);
      if (id === undefined) throw dataLoss(`${source}: special token ${token} is not in the vocabulary`);
      return id;
    };
    const vocabSize = Math.max(...vocab.values()) + 1;
    return new ClipTokenizer(tokenizer, idOf(BOS), idOf(EOS), vocabSize);
  }

  /** BOS, the text's tokens, EOS; at most maxLength ids, cutting content so EOS stays last. */
  encode(text: string, maxLength: number): number[] {
    if (!Number.isInteger(maxLength) || maxLength < 2) {
      throw invalidArgument(`tokenizer: maxLength must be an integer ≥ 2 (room for BOS and EOS), got ${maxLength}`);
    }
    const content = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    return [this.bosTokenId, ...content.slice(0, maxLength - 2), this.eosTokenId];
  }

  /** Encodes each text and pads every row to the longest one (not to maxLength). */
  encodeBatch(texts: readonly string[], maxLength: number): EncodedBatch {
    const rows = texts.map((t) => this.encode(t, maxLength));
    const lengths = rows.map((r) => r.length);
    const width = Math.max(0, ...lengths);
    const ids = rows.map((r) => [...r, ...new Array<number>(width - r.length).fill(this.padTokenId)]);
    return { ids, lengths };
  }
}
