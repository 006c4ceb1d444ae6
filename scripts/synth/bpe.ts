/**
 * Byte-level BPE in CLIP's flavour: NFC, whitespace collapsed, lower-cased,
 * split by CLIP's word pattern, each word's UTF-8 bytes spelled with GPT-2's
 * byte-to-letter table, "</w>" glued to a word's last symbol, and merges
 * learned by pair frequency. Ids follow OpenAI CLIP's vocabulary: the 256
 * byte letters, the same 256 with "</w>", one id per merge, then
 * <|startoftext|> and <|endoftext|>.
 */
export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';
export const END_OF_WORD = '</w>';
/** CLIP's word pattern (the form in openai/clip-vit-base-patch32's tokenizer.json). */
export const CLIP_WORD_PATTERN = String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;

const WORD_REGEX = new RegExp(CLIP_WORD_PATTERN, 'gu');

/**
 * GPT-2's bytes_to_unicode: printable bytes keep their own letter, the other
 * 68 move to U+0100 and up. Returned in GPT-2's order (printable bytes first),
 * which is also the order of the first 256 vocabulary ids.
 */
export function byteLetters(): readonly { byte: number; letter: string }[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = printable.map((b) => ({ byte: b, letter: String.fromCodePoint(b) }));
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) table.push({ byte: b, letter: String.fromCodePoint(256 + extra++) });
  }
  return table;
}

const LETTERS = byteLetters();
const LETTER_OF_BYTE: string[] = [];
const BYTE_OF_LETTER = new Map<string, number>();
for (const { byte, letter } of LETTERS) {
  LETTER_OF_BYTE[byte] = letter;
  BYTE_OF_LETTER.set(letter, byte);
}
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function normalize(text: string): string {
  return text.normalize('NFC').replace(/\s+/gu, ' ').toLowerCase();
}

/** Normalised text → words spelled in byte letters. */
export function preTokenize(text: string): string[] {
  const words: string[] = [];
  for (const match of normalize(text).matchAll(WORD_REGEX)) {
    let spelled = '';
    for (const byte of encoder.encode(match[0])) spelled += LETTER_OF_BYTE[byte];
    words.push(spelled);
  }
  return words;
}

/** A word's initial symbols: one per byte letter, "</w>" on the last. */
function symbolsOf(word: string): string[] {
  const symbols = Array.from(word);
  symbols[symbols.length - 1] += END_OF_WORD;
  return symbols;
}

export interface BpeModel {
  /** token → id, in CLIP's id order */
  readonly vocab: ReadonlyMap<string, number>;
  /** in rank order */
  readonly merges: readonly (readonly [string, string])[];
}

export interface BpeTrainingOptions {
  /** total vocabulary including the 512 byte tokens and the 2 special tokens */
  readonly vocabSize: number;
  /** a pair must occur at least this often to be merged (default 2) */
  readonly minFrequency?: number;
}

export function trainBpe(texts: Iterable<string>, options: BpeTrainingOptions): BpeModel {
  const maxMerges = options.vocabSize - 2 * LETTERS.length - 2;
  if (maxMerges < 0) throw new RangeError(`trainBpe: vocabSize ${options.vocabSize} is below the ${2 * LETTERS.length + 2} base tokens`);
  const minFrequency = options.minFrequency ?? 2;

  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const word of preTokenize(text)) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  }
  const words = [...wordCounts].map(([word, count]) => ({ symbols: symbolsOf(word), count }));

  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    const [left, right] = best.split(' ') as [string, string];
    merges.push([left, right]);
    for (const word of words) word.symbols = applyMerge(word.symbols, left, right);
  }
  return { vocab: vocabularyOf(merges), merges };
}

function applyMerge(symbols: readonly string[], left: string, right: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(left + right);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}

function vocabularyOf(merges: readonly (readonly [string, string])[]): Map<string, number> {
  const tokens = [
    ...LETTERS.map((l) => l.letter),
    ...LETTERS.map((l) => l.letter + END_OF_WORD),
    ...merges.map(([a, b]) => a + b),
    BOS_TOKEN,
    EOS_TOKEN,
  ];
  return new Map(tokens.map((t, id) => [t, id]));
}

/** Rebuilds a model from its merges (e.g. read back from tokenizer.json). */
export function bpeModelFromMerges(merges: readonly (readonly [string, string])[]): BpeModel {
  return { vocab: vocabularyOf(merges), merges };
}

/** Encoder and decoder of a trained model (CLIP's simple_tokenizer algorithm). */
export class BpeTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  private readonly ranks: Map<string, number>;
  private readonly tokens: string[];
  private readonly cache = new Map<string, number[]>();

  constructor(private readonly model: BpeModel) {
    this.ranks = new Map(model.merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    this.tokens = [];
    for (const [token, id] of model.vocab) this.tokens[id] = token;
    this.bosId = this.idOf(BOS_TOKEN);
    this.eosId = this.idOf(EOS_TOKEN);
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  /** Token ids of the text, wrapped in <|startoftext|> … <|endoftext|>. */
  encode(text: string): number[] {
    const ids = [this.bosId];
    for (const word of preTokenize(text)) {
      if (word === BOS_TOKEN || word === EOS_TOKEN) ids.push(this.idOf(word));
      else ids.push(...this.encodeWord(word));
    }
    ids.push(this.eosId);
    return ids;
  }

  /** Text of the ids, special tokens dropped, words separated by single spaces. */
  decode(ids: readonly number[]): string {
    let spelled = '';
    for (const id of ids) {
      if (id === this.bosId || id === this.eosId) continue;
      const token = this.tokens[id];
      if (token === undefined) throw new RangeError(`decode: id ${id} is outside the vocabulary of ${this.tokens.length}`);
      spelled += token;
    }
    return spelled
      .split(END_OF_WORD)
      .map((word) => decoder.decode(Uint8Array.from(Array.from(word), (letter) => BYTE_OF_LETTER.get(letter) ?? 0)))
      .join(' ')
      .trim();
  }

  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    let symbols = symbolsOf(word);
    for (;;) {
      let bestRank = Infinity;
      let bestAt = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      symbols = applyMerge(symbols, symbols[bestAt], symbols[bestAt + 1]);
    }
    const ids = symbols.map((s) => this.idOf(s));
    this.cache.set(word, ids);
    return ids;
  }

  private idOf(token: string): number {
    const id = this.model.vocab.get(token);
    if (id === undefined) throw new RangeError(`BpeTokenizer: token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }
}
