import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../services/core/backend.ts';
import { ClipModel } from '../../services/core/clip.ts';
import { loadClipModelDir } from '../../services/io/model-dir.ts';
import { loadDataset } from '../../services/io/datasets.ts';
import { loadTestImages, classPrompts } from './zero-shot.ts';
await initBackend('wasm');
const dir = await loadClipModelDir(process.argv[2]);
const model = ClipModel.fromWeights(dir.config, dir.weights, { explicitTranspose: true });
const tok = await dir.loadTokenizer();
for (const task of ['data/textures', 'data/shapes-colours']) {
  const ds = await loadDataset({ root: task });
  const imgs = await loadTestImages(ds, 64);
  const prompts = tok.encodeBatch(classPrompts(ds, 'a photo of a {}.'), 32).ids;
  const logits = tf.tidy(() => model.logits(model.encodeImages(tf.tensor4d(imgs.data, [ds.test.length, 64, 64, 3])), model.encodeTexts(prompts)));
  const L = logits.arraySync() as number[][];
  const C = ds.classNames.length;
  const conf = Array.from({ length: C }, () => new Array(C).fill(0));
  ds.test.forEach((it, i) => { const p = L[i].indexOf(Math.max(...L[i])); conf[it.label][p]++; });
  console.log(task, ds.classNames.join(' | '));
  conf.forEach((r, i) => console.log(ds.classNames[i].padEnd(20), r.map((x) => String(x).padStart(3)).join('')));
  // restricted to seen classes
  const seen = ds.classNames.map((c, i) => (/zigzag|wavy|crosshatched|speckled/.test(c) ? -1 : i)).filter((i) => i >= 0);
  let ok = 0, n = 0;
  ds.test.forEach((it, i) => { if (!seen.includes(it.label)) return; n++; const best = seen.reduce((a, b) => (L[i][b] > L[i][a] ? b : a)); if (best === it.label) ok++; });
  console.log('seen-only accuracy', ok / n);
}
