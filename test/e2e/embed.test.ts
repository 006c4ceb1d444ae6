/**
 * The `advclip embed` contract: one JSON object on stdout equal to the
 * independent numpy reference of HF's CLIP (test/fixtures/*\/golden.json),
 * texts in command-line order, clear errors on bad input.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, maxAbs, maxAbsDiff, runCli } from '../helpers/cli.ts';

interface Golden {
  images: { name: string; png?: string }[];
  texts: { name: string; inputIds: number[]; text?: string; hasEndOfText: boolean }[];
  imageEmbeds: number[][];
  textEmbeds: number[][];
  logitsPerImage: number[][];
}

for (const fixture of ['tiny-clip-f32', 'tiny-clip-f16', 'tiny-clip-eos2']) {
  describe(`advclip embed on ${fixture}`, () => {
    const dir = join(REPO, 'test/fixtures', fixture);
    const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
    const pngs = golden.images.map((img, i) => ({ i, png: img.png })).filter((x): x is { i: number; png: string } => !!x.png);

    it('matches the reference for PNG images, token ids and texts, in command-line order', async () => {
      // interleave --text and --input-ids to check the order is the command line's
      const texts = golden.texts.map((t, i) => ({ t, i }));
      const args = ['embed', '--model', dir, ...pngs.flatMap((p) => ['--image', join(dir, p.png)])];
      for (const { t } of texts) args.push(...(t.text ? ['--text', t.text] : ['--input-ids', t.inputIds.join(',')]));
      args.push('--json');
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { image_embeds: number[][]; text_embeds: number[][]; logits_per_image: number[][] };
      assert.equal(r.stdout.trim().split('\n').length, 1, 'stdout holds exactly one JSON line');
      const imageRef = pngs.map((p) => golden.imageEmbeds[p.i]);
      const textRef = texts.map(({ i }) => golden.textEmbeds[i]);
      const logitRef = pngs.map((p) => golden.logitsPerImage[p.i]);
      const rel = (a: number[][], b: number[][]) => maxAbsDiff(a, b) / maxAbs(b);
      assert.ok(rel(out.image_embeds, imageRef) <= 1e-4, `image embeds off by ${rel(out.image_embeds, imageRef)}`);
      assert.ok(rel(out.text_embeds, textRef) <= 1e-4, `text embeds off by ${rel(out.text_embeds, textRef)}`);
      assert.ok(rel(out.logits_per_image, logitRef) <= 1e-4, `logits off by ${rel(out.logits_per_image, logitRef)}`);
    });
  });
}

describe('advclip embed errors', () => {
  it('names a missing model directory, in at most 3 lines, without a stack trace', async () => {
    const r = await runCli(['embed', '--model', '/no/such/model', '--json']);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.ok(lines.length <= 3, r.stderr);
    assert.match(r.stderr, /\/no\/such\/model/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('names a corrupt weights file', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'advclip-embed-'));
    try {
      for (const f of ['config.json', 'preprocessor_config.json']) copyFileSync(join(REPO, 'test/fixtures/tiny-clip-f32', f), join(tmp, f));
      writeFileSync(join(tmp, 'model.safetensors'), Buffer.from([1, 2, 3]));
      const r = await runCli(['embed', '--model', tmp, '--input-ids', '1,2', '--json']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /model\.safetensors/);
      assert.ok(r.stderr.trim().split('\n').length <= 3, r.stderr);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('works without tokenizer.json for images and ids, and refuses --text there', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'advclip-embed-'));
    try {
      for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(REPO, 'test/fixtures/tiny-clip-f32', f), join(tmp, f));
      const ok = await runCli(['embed', '--model', tmp, '--input-ids', '613,534,614', '--json']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as { text_embeds: number[][] }).text_embeds.length, 1);
      const bad = await runCli(['embed', '--model', tmp, '--text', 'a cat', '--json']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /tokenizer\.json/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('rejects malformed --input-ids and has --help', async () => {
    const r = await runCli(['embed', '--model', join(REPO, 'test/fixtures/tiny-clip-f32'), '--input-ids', '1,x', '--json']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /input-ids/);
    const help = await runCli(['embed', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--model DIR/);
  });
});
