/**
 * `advclip embed`: image and text features of a CLIP model directory, equal
 * to HF's get_image_features / get_text_features (projected, not
 * normalised), and logits_per_image.
 */
import * as tf from '@tensorflow/tfjs';
import { invalidArgument } from '../core/errors.ts';
import type { HostTensor } from '../core/tensor.ts';
import { preprocessImage } from '../io/images.ts';
import { orderedValues, type CommandSpec, type FlagValues } from './args.ts';
import type { Logger } from '../protocol/log.ts';
import { loadModel, startBackend } from '../run/backend.ts';
import { backendFlag } from './train-flags.ts';

export const embedCommand: CommandSpec = {
  name: 'embed',
  summary: 'Embed images and texts with a CLIP model directory (HF layout)',
  usage: 'advclip embed --model DIR [--image FILE]... [--text STR]... [--input-ids 49406,320,49407]... --json',
  flags: {
    model: { type: 'string', arg: 'DIR', required: true, help: 'HF CLIPModel directory (config.json, model.safetensors, tokenizer.json) or a Hub repo id owner/name[@revision], fetched into the HF cache (HF_HOME; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE=1)' },
    image: { type: 'list', arg: 'FILE', help: 'an 8-bit PNG or JPEG image' },
    text: { type: 'list', arg: 'STR', help: 'a text, tokenised with the model’s tokenizer.json' },
    'input-ids': { type: 'list', arg: 'IDS', help: 'token ids, comma-separated, used as given' },
    json: { type: 'boolean', help: 'print one JSON object on stdout' },
    backend: backendFlag,
  },
};

export function parseInputIds(text: string): number[] {
  const ids = text.split(',').map((s) => s.trim());
  if (ids.some((s) => !/^\d+$/.test(s))) throw invalidArgument(`--input-ids "${text}": expected comma-separated non-negative integers`);
  return ids.map(Number);
}

const rows = (t: tf.Tensor2D): number[][] => t.arraySync();

export async function runEmbed(flags: FlagValues, argv: readonly string[], log: Logger): Promise<void> {
  const backend = await startBackend(flags.backend as string | undefined, log);
  const { dir, model } = await loadModel(flags.model as string, backend);
  const texts = orderedValues(argv, ['text', 'input-ids']);
  const tokenizer = texts.some((t) => t.name === 'text') ? await dir.loadTokenizer() : null;
  const sequences = texts.map((t) => (t.name === 'text' ? tokenizer!.encode(t.value, dir.config.text.maxPositionEmbeddings) : parseInputIds(t.value)));
  const { preprocess } = dir;
  const images: HostTensor[] = [];
  for (const path of (flags.image as string[] | undefined) ?? []) {
    images.push(await preprocessImage(path, { size: preprocess.size, cropSize: preprocess.cropSize }));
  }
  const out = tf.tidy(() => {
    const size = dir.config.vision.imageSize;
    const imageEmbeds = images.length
      ? model.encodeImages(tf.tensor4d(Float32Array.from(images.flatMap((i) => [...i.data])), [images.length, size, size, 3]))
      : null;
    // sequences of one length share a pass: a sequence is used as given, never padded
    const textEmbeds = sequences.map((s) => model.encodeTexts([s]));
    const text = textEmbeds.length ? (tf.concat(textEmbeds, 0) as tf.Tensor2D) : null;
    return {
      image_embeds: imageEmbeds ? rows(imageEmbeds) : [],
      text_embeds: text ? rows(text) : [],
      logits_per_image: imageEmbeds && text ? rows(model.logits(imageEmbeds, text)) : [],
    };
  });
  process.stdout.write(JSON.stringify(out) + '\n');
  if (!flags.json) log.info(`embedded ${images.length} image(s) and ${sequences.length} text(s)`);
  model.dispose();
}
