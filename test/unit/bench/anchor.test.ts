import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anchorPath, parseAnchorLine } from '../../../bench/torch.ts';

test("the PyTorch anchor's result line parses into seconds, threads and its own estimates", () => {
  const line = parseAnchorLine('torch 1.13.0a0+git6c9b55e threads=2: 18.60 s/step, ~99 GFLOP/s (~1.85 TFLOP/step)\n');
  assert.deepEqual(line, { version: '1.13.0a0+git6c9b55e', threads: 2, secondsPerStep: 18.6, gflops: 99, tflopPerStep: 1.85 });
  assert.equal(parseAnchorLine('Traceback (most recent call last):\n  ModuleNotFoundError: torch'), null);
});

test('the anchor is ../shared/anchors next to the repository unless ADVCLIP_ANCHOR names another', () => {
  assert.equal(anchorPath('/work/main', {}), '/work/shared/anchors/torch_advclip_step.py');
  assert.equal(anchorPath('/work/main', { ADVCLIP_ANCHOR: '/elsewhere/anchor.py' }), '/elsewhere/anchor.py');
});
