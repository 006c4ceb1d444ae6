import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '@huggingface/tokenizers';
import {
  BOS_TOKEN, BpeTokenizer, END_OF_WORD, EOS_TOKEN, byteLetters, preTokenize, trainBpe,
} from '../../../scripts/synth/bpe.ts';
import { generateCaptions } from '../../../scripts/synth/corpus.ts';
import { bpeModelFromTokenizerJson, tokenizerFiles, tokenizerJson } from '../../../scripts/synth/tokenizer-json.ts';

const corpus = [...generateCaptions(0, 4000)];
const model = trainBpe(corpus, { vocabSize: 2048 });
const ours = new BpeTokenizer(model);
const probes = [
  ...corpus.slice(0, 50),
  'A Photo of a  RED star.',
  'a zigzag crosshatched speckled wavy shape',
  "it's a café — 42 naïve ünïcode words!",
];

test('the byte table is GPT-2\'s: 256 distinct printable letters, printable ASCII kept', () => {
  const table = byteLetters();
  assert.equal(table.length, 256);
  assert.equal(new Set(table.map((t) => t.letter)).size, 256);
  assert.equal(new Set(table.map((t) => t.byte)).size, 256);
  assert.deepEqual(table[0], { byte: 0x21, letter: '!' });
  assert.equal(table.find((t) => t.byte === 0x20)?.letter, 'Ġ');
  assert.equal(table.find((t) => t.byte === 0x61)?.letter, 'a');
});

test('ids are in CLIP order: bytes, bytes with </w>, merges, then the two special tokens', () => {
  const letters = byteLetters();
  const size = model.vocab.size;
  assert.equal(size, 512 + model.merges.length + 2);
  assert.equal(model.vocab.get(letters[0].letter), 0);
  assert.equal(model.vocab.get(letters[255].letter), 255);
  assert.equal(model.vocab.get(letters[0].letter + END_OF_WORD), 256);
  assert.equal(model.vocab.get(model.merges[0].join('')), 512);
  assert.equal(model.vocab.get(BOS_TOKEN), size - 2);
  assert.equal(model.vocab.get(EOS_TOKEN), size - 1);
  assert.equal(new Set(model.vocab.values()).size, size);
});

test('training merges every caption word into one token, then stops', () => {
  assert.ok(model.merges.length > 100);
  assert.ok(model.vocab.size < 2048, 'stops because no pair repeats, before the size cap');
  for (const word of ['red', 'photo', 'background', 'checkered', 'triangle']) {
    assert.equal(ours.encode(word).length, 3, word);
  }
  assert.deepEqual(trainBpe(corpus, { vocabSize: 512 + 2 + 10 }).merges, model.merges.slice(0, 10));
});

test('encode then decode gives back the normalised text', () => {
  for (const text of probes.slice(0, 52)) {
    const ids = ours.encode(text);
    assert.equal(ids[0], ours.bosId);
    assert.equal(ids.at(-1), ours.eosId);
    assert.equal(ours.decode(ids), text.toLowerCase().replace(/\s+/g, ' ').replace(/\.$/, ' .'), 'a final full stop is a word of its own');
  }
  assert.equal(ours.decode(ours.encode('a zigzag shape')), 'a zigzag shape');
  assert.equal(ours.decode(ours.encode("it's a café")), "it 's a café");
});

test('pre-tokenization follows CLIP: lower case, words, single digits, punctuation runs', () => {
  assert.deepEqual(preTokenize('Red  STAR, 42!'), ['red', 'star', ',', '4', '2', '!']);
});

test('tokenizer.json has the layout of openai/clip-vit-base-patch32', () => {
  const json = tokenizerJson(model);
  assert.deepEqual(Object.keys(json), [
    'version', 'truncation', 'padding', 'added_tokens', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'model',
  ]);
  assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special]), [
    [ours.bosId, BOS_TOKEN, true], [ours.eosId, EOS_TOKEN, true],
  ]);
  assert.deepEqual(json.normalizer.normalizers.map((n) => n.type), ['NFC', 'Replace', 'Lowercase']);
  assert.deepEqual(json.pre_tokenizer.pretokenizers.map((p) => p.type), ['Split', 'ByteLevel']);
  assert.equal(json.post_processor.type, 'RobertaProcessing');
  assert.deepEqual(json.post_processor.cls, [BOS_TOKEN, ours.bosId]);
  assert.deepEqual(json.post_processor.sep, [EOS_TOKEN, ours.eosId]);
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.model.end_of_word_suffix, '</w>');
  assert.equal(json.model.unk_token, EOS_TOKEN);
  assert.equal(Object.keys(json.model.vocab).length, model.vocab.size);
  assert.equal(json.model.merges.length, model.merges.length);
  assert.deepEqual(bpeModelFromTokenizerJson(JSON.parse(JSON.stringify(json))).merges, model.merges);
});

test('Hugging Face tokenizers.js reads our tokenizer.json and encodes exactly as we do', () => {
  const files = tokenizerFiles(model, 32);
  const theirs = new Tokenizer(JSON.parse(files['tokenizer.json']), JSON.parse(files['tokenizer_config.json']));
  for (const text of probes) assert.deepEqual(theirs.encode(text).ids, ours.encode(text), text);
});

test('the slow-tokenizer files agree with tokenizer.json', () => {
  const files = tokenizerFiles(model, 32);
  const lines = files['merges.txt'].trimEnd().split('\n');
  assert.equal(lines[0], '#version: 0.2');
  assert.deepEqual(lines.slice(1), tokenizerJson(model).model.merges);
  assert.deepEqual(JSON.parse(files['vocab.json']), tokenizerJson(model).model.vocab);
  assert.equal(JSON.parse(files['tokenizer_config.json']).model_max_length, 32);
});
