/**
 * An adapter version on the wire (NATS object store, GetAdapter): the PEFT
 * `adapter_model.safetensors` bytes of the LoRA factors, with the version
 * and the LoRA config (α, dropout, targets… that adapter_config.json needs)
 * in the metadata, so a version read back from NATS is a whole PEFT adapter. Coordinator and workers encode identically, so the
 * initial adapters (version 0, which every worker derives from the seed)
 * have the same SHA-256 on both ends.
 */
import { dataLoss } from '../core/errors.ts';
import { validateLoraConfig, type LoraConfig, type LoraWeights } from '../core/lora.ts';
import { adapterWeightsBytes, factorsOf } from '../io/peft.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { sha256Hex } from './adapter-store.ts';

export interface AdapterBlob {
  readonly version: number;
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

const LORA_CONFIG_KEY = 'advclip_lora_config';

export function encodeAdapterBlob(lora: LoraWeights, version: number): AdapterBlob {
  const bytes = adapterWeightsBytes(lora, { advclip_version: String(version), [LORA_CONFIG_KEY]: JSON.stringify(lora.config) });
  return { version, sha256: sha256Hex(bytes), bytes };
}

/** The factors in a blob, checked against the run's sites and rank (`like`); DATA_LOSS/INVALID_ARGUMENT when they do not fit. */
export function decodeAdapterBlob(bytes: Uint8Array, like: Pick<LoraWeights, 'config' | 'sites'>, source: string): LoraWeights {
  const file = parseSafetensors(bytes, source);
  return factorsOf(file.tensors, like.config, like.sites, source);
}

/** The LoRA config a blob carries; DATA_LOSS naming `source` when it has none or it does not parse. */
export function loraConfigOfBlob(bytes: Uint8Array, source: string): LoraConfig {
  const text = parseSafetensors(bytes, source).metadata[LORA_CONFIG_KEY];
  if (text === undefined) throw dataLoss(`${source}: no ${LORA_CONFIG_KEY} in the safetensors metadata (published by an advclip older than adapter pull)`);
  try {
    return validateLoraConfig(JSON.parse(text) as LoraConfig);
  } catch (err) {
    throw dataLoss(`${source}: ${LORA_CONFIG_KEY}: ${(err as Error).message}`);
  }
}
