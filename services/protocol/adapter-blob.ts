/**
 * An adapter version on the wire (NATS object store, GetAdapter): the PEFT
 * `adapter_model.safetensors` bytes of the LoRA factors, with the version
 * in the metadata. Coordinator and workers encode identically, so the
 * initial adapters (version 0, which every worker derives from the seed)
 * have the same SHA-256 on both ends.
 */
import type { LoraWeights } from '../core/lora.ts';
import { adapterWeightsBytes, factorsOf } from '../io/peft.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { sha256Hex } from './adapter-store.ts';

export interface AdapterBlob {
  readonly version: number;
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

export function encodeAdapterBlob(lora: LoraWeights, version: number): AdapterBlob {
  const bytes = adapterWeightsBytes(lora, { advclip_version: String(version) });
  return { version, sha256: sha256Hex(bytes), bytes };
}

/** The factors in a blob, checked against the run's sites and rank (`like`); DATA_LOSS/INVALID_ARGUMENT when they do not fit. */
export function decodeAdapterBlob(bytes: Uint8Array, like: Pick<LoraWeights, 'config' | 'sites'>, source: string): LoraWeights {
  const file = parseSafetensors(bytes, source);
  return factorsOf(file.tensors, like.config, like.sites, source);
}
