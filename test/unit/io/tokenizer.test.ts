import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AdvclipError } from '../../../services/core/errors.ts';
import { ClipTokenizer } from '../../../services/io/tokenizer.ts';

const dir = new URL('../../fixtures/tiny-clip-f32/', import.meta.url);
const tokenizerJson = JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8'));
const golden = JSON.parse(readFileSync(new URL('golden.json', dir), 'utf8')) as {
  tokenizerCases: { text: string; maxLength: number; ids: number[] }[];
  texts: { text?: string; inputIds: number[] }[];
};
const vocab = tokenizerJson.model.vocab as Record<string, number>;
const tok = ClipTokenizer.fromJson(tokenizerJson, 'tokenizer.json');
/** ids spelled as vocabulary entries, so an expectation reads as the tokens a person checked by hand. */
const ids = (...tokens: string[]) =>
  tokens.map((t) => {
    assert.ok(t in vocab, `fixture vocab lacks ${t}`);
    return vocab[t];
  });

test('finds BOS/EOS and the vocabulary size from tokenizer.json', () => {
  assert.equal(tok.bosTokenId, vocab['<|startoftext|>']);
  assert.equal(tok.eosTokenId, vocab['<|endoftext|>']);
  assert.equal(tok.padTokenId, tok.eosTokenId);
  assert.equal(tok.vocabSize, Object.keys(vocab).length);
});

test('hand-checked: lowercases, collapses whitespace, suffixes word ends with </w>', () => {
  const expected = ids('<|startoftext|>', 'a</w>', 'photo</w>', 'of</w>', 'a</w>', 'red</w>', 'circle</w>', '.</w>', '<|endoftext|>');
  assert.deepEqual(tok.encode('a photo of a red circle.', 77), expected);
  assert.deepEqual(tok.encode('  A\tPHOTO\n\nof   a Red   CIRCLE.  ', 77), expected);
});

test('hand-checked: punctuation runs, contractions and single digits are their own pieces', () => {
  assert.deepEqual(tok.encode('!!!???', 77), ids('<|startoftext|>', '!', '!', '!', '?', '?', '?</w>', '<|endoftext|>'));
  assert.deepEqual(tok.encode("it's", 77), ids('<|startoftext|>', 'i', 't</w>', "'", 's</w>', '<|endoftext|>'));
  assert.deepEqual(tok.encode('10 (cyan/pink)', 77), ids('<|startoftext|>', '1</w>', '0</w>', '(</w>', 'cyan</w>', '/</w>', 'pink</w>', ')</w>', '<|endoftext|>'));
});

test('truncation keeps BOS first and EOS last within maxLength', () => {
  const long = tok.encode('a photo of a red circle.', 5);
  assert.deepEqual(long, ids('<|startoftext|>', 'a</w>', 'photo</w>', 'of</w>', '<|endoftext|>'));
  assert.deepEqual(tok.encode('anything at all', 2), [tok.bosTokenId, tok.eosTokenId]);
  assert.deepEqual(tok.encode('', 77), [tok.bosTokenId, tok.eosTokenId]);
  assert.throws(() => tok.encode('x', 1), (e: unknown) => e instanceof AdvclipError && e.code === 'INVALID_ARGUMENT');
});

test('matches the independent Python BPE on every golden case', () => {
  assert.ok(golden.tokenizerCases.length >= 15);
  for (const c of golden.tokenizerCases) assert.deepEqual(tok.encode(c.text, c.maxLength), c.ids, JSON.stringify(c.text));
  for (const t of golden.texts.filter((t) => t.text !== undefined)) assert.deepEqual(tok.encode(t.text!, 16), t.inputIds, t.text);
});

test('encodeBatch pads with the pad id to the longest row and reports lengths', () => {
  const batch = tok.encodeBatch(['a red circle.', 'star', 'a photo of a blue striped square.'], 77);
  const rows = ['a red circle.', 'star', 'a photo of a blue striped square.'].map((t) => tok.encode(t, 77));
  assert.deepEqual(batch.lengths, rows.map((r) => r.length));
  const width = Math.max(...batch.lengths);
  batch.ids.forEach((row, i) => {
    assert.equal(row.length, width);
    assert.deepEqual(row.slice(0, rows[i].length), rows[i]);
    assert.ok(row.slice(rows[i].length).every((id) => id === tok.padTokenId));
  });
  assert.deepEqual(tok.encodeBatch([], 77), { ids: [], lengths: [] });
});

test('fromFile reads the fixture; bad inputs fail with the file named', async () => {
  const fromFile = await ClipTokenizer.fromFile(new URL('tokenizer.json', dir).pathname);
  assert.deepEqual(fromFile.encode('a star', 77), tok.encode('a star', 77));
  await assert.rejects(ClipTokenizer.fromFile('/nonexistent/tokenizer.json'), (e: unknown) => e instanceof AdvclipError && e.code === 'NOT_FOUND' && e.message.includes('/nonexistent/tokenizer.json'));
  const wordPiece = { ...tokenizerJson, model: { type: 'WordPiece', vocab: {} } };
  assert.throws(() => ClipTokenizer.fromJson(wordPiece, 'wp.json'), (e: unknown) => e instanceof AdvclipError && e.code === 'DATA_LOSS' && /wp\.json: model\.type must be "BPE"/.test(e.message));
  const noEos = { ...tokenizerJson, added_tokens: [], model: { ...tokenizerJson.model, vocab: Object.fromEntries(Object.entries(vocab).filter(([k]) => k !== '<|endoftext|>')) } };
  assert.throws(() => ClipTokenizer.fromJson(noEos, 'noeos.json'), (e: unknown) => e instanceof AdvclipError && /noeos\.json: special token <\|endoftext\|>/.test(e.message));
});
