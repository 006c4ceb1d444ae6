/**
 * A trained BPE model in the file formats of Hugging Face's CLIP tokenizers:
 * tokenizer.json laid out as openai/clip-vit-base-patch32's (what
 * transformers' CLIPConverter produces), plus the slow tokenizer's vocab.json
 * and merges.txt and the two small config files.
 */
import { BOS_TOKEN, CLIP_WORD_PATTERN, END_OF_WORD, EOS_TOKEN, bpeModelFromMerges, type BpeModel } from './bpe.ts';

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
}

export function tokenizerJson(model: BpeModel) {
  const bosId = model.vocab.get(BOS_TOKEN)!;
  const eosId = model.vocab.get(EOS_TOKEN)!;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(bosId, BOS_TOKEN), addedToken(eosId, EOS_TOKEN)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: String.raw`\s+` }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_WORD_PATTERN }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [EOS_TOKEN, eosId],
      cls: [BOS_TOKEN, bosId],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOS_TOKEN,
      continuing_subword_prefix: '',
      end_of_word_suffix: END_OF_WORD,
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries(model.vocab),
      merges: model.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

export type TokenizerJson = ReturnType<typeof tokenizerJson>;

/** Reads the model back from a tokenizer.json object; the vocabulary must be CLIP-ordered. */
export function bpeModelFromTokenizerJson(json: { model: { vocab: Record<string, number>; merges: readonly (string | readonly [string, string])[] } }): BpeModel {
  const merges = json.model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : ([m[0], m[1]] as const)));
  const model = bpeModelFromMerges(merges);
  for (const [token, id] of Object.entries(json.model.vocab)) {
    if (model.vocab.get(token) !== id) {
      throw new RangeError(`tokenizer.json: token ${JSON.stringify(token)} has id ${id}, expected ${model.vocab.get(token)} in CLIP order`);
    }
  }
  return model;
}

/** Every file of a Hugging Face CLIP tokenizer directory, name → contents. */
export function tokenizerFiles(model: BpeModel, modelMaxLength: number): Record<string, string> {
  const special = { bos_token: BOS_TOKEN, eos_token: EOS_TOKEN, unk_token: EOS_TOKEN, pad_token: EOS_TOKEN };
  const config = {
    add_prefix_space: false,
    ...special,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    errors: 'replace',
    model_max_length: modelMaxLength,
    tokenizer_class: 'CLIPTokenizer',
  };
  return {
    'tokenizer.json': `${JSON.stringify(tokenizerJson(model), null, 2)}\n`,
    'vocab.json': `${JSON.stringify(Object.fromEntries(model.vocab))}\n`,
    'merges.txt': ['#version: 0.2', ...model.merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n',
    'tokenizer_config.json': `${JSON.stringify(config, null, 2)}\n`,
    'special_tokens_map.json': `${JSON.stringify(special, null, 2)}\n`,
  };
}
