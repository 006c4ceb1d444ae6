/**
 * LoRA: W = W0 + s·B·A on chosen linear layers of both CLIP towers.
 * A ∈ R^{r×in} starts random, B ∈ R^{out×r} starts at zero, so training
 * starts from the pretrained model. Sites are named by their HF module path
 * (`vision_model.encoder.layers.0.self_attn.q_proj`); PEFT keys add
 * `base_model.model.` and `.lora_A.weight` / `.lora_B.weight`.
 */
import type { ClipConfig } from './clip-config.ts';
import { invalidArgument } from './errors.ts';
import { Purpose, RandomStream, wordOf } from './rng.ts';
import type { HostTensor } from './tensor.ts';

export const LoraTargets = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'] as const;
export type LoraTarget = (typeof LoraTargets)[number];
export const Towers = ['vision', 'text'] as const;
export type Tower = (typeof Towers)[number];
export type LoraInit = 'kaiming-uniform' | 'gaussian';

export interface LoraConfig {
  readonly rank: number;
  readonly alpha: number;
  /** s = α/√r (rsLoRA, as the authors' code) instead of α/r */
  readonly rslora: boolean;
  readonly dropout: number;
  readonly targets: readonly LoraTarget[];
  readonly towers: readonly Tower[];
  /** layer indices to adapt; null = every layer */
  readonly layers: readonly number[] | null;
  readonly init: LoraInit;
}

export const defaultLoraConfig: LoraConfig = Object.freeze<LoraConfig>({
  rank: 2,
  alpha: 1,
  rslora: false,
  dropout: 0.25,
  targets: ['q_proj', 'k_proj', 'v_proj'],
  towers: ['vision', 'text'],
  layers: null,
  init: 'kaiming-uniform',
});

export function validateLoraConfig(c: LoraConfig): LoraConfig {
  if (!Number.isInteger(c.rank) || c.rank < 1) throw invalidArgument(`LoRA rank must be a positive integer, got ${c.rank}`);
  if (!(c.alpha > 0)) throw invalidArgument(`LoRA alpha must be > 0, got ${c.alpha}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw invalidArgument(`LoRA dropout must be in [0, 1), got ${c.dropout}`);
  if (c.targets.length === 0) throw invalidArgument('LoRA needs at least one target module');
  for (const t of c.targets) if (!LoraTargets.includes(t)) throw invalidArgument(`unknown LoRA target "${t}"`);
  for (const t of c.towers) if (!Towers.includes(t)) throw invalidArgument(`unknown tower "${t}"`);
  return Object.freeze({ ...c, targets: [...c.targets], towers: [...c.towers], layers: c.layers && [...c.layers] });
}

export const loraScale = (c: LoraConfig): number => (c.rslora ? c.alpha / Math.sqrt(c.rank) : c.alpha / c.rank);

export interface LoraSite {
  /** HF module path, e.g. `text_model.encoder.layers.3.self_attn.v_proj` */
  readonly key: string;
  readonly tower: Tower;
  readonly layer: number;
  readonly target: LoraTarget;
  readonly inDim: number;
  readonly outDim: number;
}

function modulePath(target: LoraTarget): string {
  return target === 'fc1' || target === 'fc2' ? `mlp.${target}` : `self_attn.${target}`;
}

/** The adapted layers of a model, in a fixed order (vision first, by layer, then target order). */
export function loraSites(model: ClipConfig, c: LoraConfig): LoraSite[] {
  const sites: LoraSite[] = [];
  for (const tower of Towers) {
    if (!c.towers.includes(tower)) continue;
    const tc = tower === 'vision' ? model.vision : model.text;
    for (const layer of c.layers ?? [...Array(tc.numHiddenLayers).keys()]) {
      if (layer < 0 || layer >= tc.numHiddenLayers) {
        throw invalidArgument(`LoRA layer ${layer} does not exist in the ${tower} tower (${tc.numHiddenLayers} layers)`);
      }
      for (const target of LoraTargets) {
        if (!c.targets.includes(target)) continue;
        const d = tc.hiddenSize;
        const inDim = target === 'fc2' ? tc.intermediateSize : d;
        const outDim = target === 'fc1' ? tc.intermediateSize : d;
        sites.push({ key: `${tower}_model.encoder.layers.${layer}.${modulePath(target)}`, tower, layer, target, inDim, outDim });
      }
    }
  }
  return sites;
}

/** LoRA matrices on the host, in PEFT orientation: A [r, in], B [out, r]. */
export interface LoraWeights {
  readonly config: LoraConfig;
  readonly sites: readonly LoraSite[];
  readonly a: readonly HostTensor[];
  readonly b: readonly HostTensor[];
}

export const trainableParameterCount = (sites: readonly LoraSite[], rank: number): number =>
  sites.reduce((n, s) => n + rank * (s.inDim + s.outDim), 0);

/**
 * Initial adapters. A depends only on (seed, LoRA config, site), B = 0.
 * kaiming-uniform is loralib's/PEFT's (a = √5 → bound 1/√in); gaussian uses σ = 1/r as PEFT.
 */
export function initLora(model: ClipConfig, config: LoraConfig, seed: number): LoraWeights {
  const c = validateLoraConfig(config);
  const sites = loraSites(model, c);
  const a = sites.map((s) => {
    const rng = RandomStream.of(Purpose.loraInit, seed, wordOf(s.key), c.rank, wordOf(c.init));
    const data = new Float32Array(c.rank * s.inDim);
    const bound = 1 / Math.sqrt(s.inDim);
    for (let i = 0; i < data.length; i++) {
      data[i] = c.init === 'gaussian' ? rng.normal() / c.rank : (2 * rng.uniform() - 1) * bound;
    }
    return { shape: [c.rank, s.inDim], data };
  });
  const b = sites.map((s) => ({ shape: [s.outDim, c.rank], data: new Float32Array(s.outDim * c.rank) }));
  return { config: c, sites, a, b };
}

export const peftKeyA = (site: LoraSite): string => `base_model.model.${site.key}.lora_A.weight`;
export const peftKeyB = (site: LoraSite): string => `base_model.model.${site.key}.lora_B.weight`;

/** HF weights with the adapters merged in: W = W0 + s·B·A on every adapted layer. */
export function mergeLora(weights: ReadonlyMap<string, HostTensor>, lora: LoraWeights): Map<string, HostTensor> {
  const merged = new Map(weights);
  const s = loraScale(lora.config);
  const r = lora.config.rank;
  lora.sites.forEach((site, i) => {
    const name = `${site.key}.weight`;
    const w0 = weights.get(name);
    if (!w0) throw invalidArgument(`cannot merge: the model has no tensor "${name}"`);
    const a = lora.a[i].data;
    const b = lora.b[i].data;
    const w = Float32Array.from(w0.data);
    for (let o = 0; o < site.outDim; o++) {
      for (let k = 0; k < r; k++) {
        const bo = s * b[o * r + k];
        if (bo === 0) continue;
        for (let j = 0; j < site.inDim; j++) w[o * site.inDim + j] += bo * a[k * site.inDim + j];
      }
    }
    merged.set(name, { shape: w0.shape, data: w });
  });
  return merged;
}
