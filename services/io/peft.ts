/**
 * LoRA adapters in Hugging Face PEFT's format: `adapter_model.safetensors`
 * (`base_model.model.<module>.lora_A.weight` [r, in], `….lora_B.weight`
 * [out, r]) and `adapter_config.json` (peft_type LORA, r, lora_alpha,
 * target_modules, lora_dropout, use_rslora, …), so `PeftModel.from_pretrained`
 * loads what we train and we load what PEFT trains on CLIP.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClipConfig } from '../core/clip-config.ts';
import { dataLoss, invalidArgument, notFound } from '../core/errors.ts';
import { LoraTargets, loraSites, peftKeyA, peftKeyB, validateLoraConfig, type LoraConfig, type LoraSite, type LoraTarget, type LoraWeights, type Tower } from '../core/lora.ts';
import type { HostTensor } from '../core/tensor.ts';
import { readSafetensorsFile, writeSafetensors } from './safetensors.ts';

export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';

function targetModules(c: LoraConfig): string[] | string {
  const bothTowers = c.towers.length === 2;
  if (bothTowers) return [...c.targets];
  // one tower only: PEFT takes a regex matched against the full module name
  return `.*${c.towers[0]}_model\\.encoder\\.layers\\.\\d+\\..*(${c.targets.join('|')})`;
}

export function adapterConfigJson(c: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: null,
    base_model_name_or_path: baseModel,
    r: c.rank,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    use_rslora: c.rslora,
    target_modules: targetModules(c),
    layers_to_transform: c.layers ? [...c.layers] : null,
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: c.init === 'gaussian' ? 'gaussian' : true,
    inference_mode: true,
    modules_to_save: null,
  };
}

/** The LoRA factors under their PEFT keys, in site order (A then B per site). */
export function peftTensors(lora: LoraWeights): Map<string, HostTensor> {
  const tensors = new Map<string, HostTensor>();
  lora.sites.forEach((s, i) => {
    tensors.set(peftKeyA(s), lora.a[i]);
    tensors.set(peftKeyB(s), lora.b[i]);
  });
  return tensors;
}

/** `adapter_model.safetensors` as bytes: what saveAdapter writes, and an adapter version on the wire. */
export function adapterWeightsBytes(lora: LoraWeights, extra: Record<string, string> = {}): Uint8Array {
  return writeSafetensors(peftTensors(lora), { metadata: { format: 'pt', ...extra } });
}

export async function saveAdapter(dir: string, lora: LoraWeights, baseModel: string, extra: Record<string, string> = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, ADAPTER_WEIGHTS_FILE), adapterWeightsBytes(lora, extra));
  await writeFile(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(adapterConfigJson(lora.config, baseModel), null, 2) + '\n');
}

function parseAdapterConfig(json: Record<string, unknown>, source: string, weightKeys: readonly string[]): LoraConfig {
  if (json.peft_type !== 'LORA') throw invalidArgument(`${source}: peft_type is ${JSON.stringify(json.peft_type)}, expected "LORA"`);
  const num = (key: string) => {
    const v = json[key];
    if (typeof v !== 'number') throw invalidArgument(`${source}: "${key}" must be a number`);
    return v;
  };
  // the sites are what the weights hold; target names and towers are read from their keys
  const targets = LoraTargets.filter((t) => weightKeys.some((k) => k.includes(`.${t}.lora_A`)));
  const towers = (['vision', 'text'] as Tower[]).filter((t) => weightKeys.some((k) => k.startsWith(`base_model.model.${t}_model.`)));
  const layers = Array.isArray(json.layers_to_transform) ? (json.layers_to_transform as number[]) : typeof json.layers_to_transform === 'number' ? [json.layers_to_transform] : null;
  return validateLoraConfig({
    rank: num('r'),
    alpha: num('lora_alpha'),
    rslora: json.use_rslora === true,
    dropout: typeof json.lora_dropout === 'number' ? json.lora_dropout : 0,
    targets: targets as LoraTarget[],
    towers,
    layers,
    init: json.init_lora_weights === 'gaussian' ? 'gaussian' : 'kaiming-uniform',
  });
}

/** Loads a PEFT LoRA adapter for a model, checking every tensor's shape against it. */
export async function loadAdapter(dir: string, model: ClipConfig): Promise<LoraWeights> {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  let raw: string;
  try {
    raw = await readFile(configPath, 'utf8');
  } catch {
    throw notFound(`${configPath}: no adapter config (is ${dir} a PEFT adapter directory?)`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(raw) as Record<string, unknown>;
  } catch (err) {
    throw dataLoss(`${configPath}: invalid JSON (${(err as Error).message})`);
  }
  const file = await readSafetensorsFile(join(dir, ADAPTER_WEIGHTS_FILE));
  const keys = [...file.tensors.keys()];
  const config = parseAdapterConfig(json, configPath, keys);
  return factorsOf(file.tensors, config, loraSites(model, config), ADAPTER_WEIGHTS_FILE);
}

/**
 * The factors of known sites from PEFT-keyed tensors, each shape checked;
 * a missing or extra tensor is INVALID_ARGUMENT naming `source`.
 */
export function factorsOf(tensors: ReadonlyMap<string, HostTensor>, config: LoraConfig, sites: readonly LoraSite[], source: string): LoraWeights {
  const expect = (key: string, shape: readonly number[]): HostTensor => {
    const t = tensors.get(key);
    if (!t) throw invalidArgument(`${source}: missing tensor "${key}"`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw invalidArgument(`${source}: tensor "${key}" has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`);
    }
    return t;
  };
  const a = sites.map((s) => expect(peftKeyA(s), [config.rank, s.inDim]));
  const b = sites.map((s) => expect(peftKeyB(s), [s.outDim, config.rank]));
  const known = new Set(sites.flatMap((s) => [peftKeyA(s), peftKeyB(s)]));
  const extra = [...tensors.keys()].filter((k) => !known.has(k));
  if (extra.length) throw invalidArgument(`${source}: tensor "${extra[0]}" is not a LoRA factor of this model's adapted layers`);
  return { config, sites, a, b };
}
