/**
 * Structure-aware fuzz of the safetensors reader and the PEFT adapter
 * reader: a valid PEFT adapter file of the tiny CLIP, mutated where a
 * broken or hostile file differs (the header length, a header entry's
 * dtype, shape or data_offsets, the metadata, an extra or a missing
 * tensor, truncated data), then parsed and read as the model's adapter.
 * Random bytes stop at the header length or the JSON; these reach the
 * entry, tiling and PEFT checks. The test counts which check refused each
 * case, asserts that nearly all got past the JSON, that every check was
 * reached, and that a refusal is always a typed error naming the file.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { AdvclipError } from '../../../services/core/errors.ts';
import { defaultLoraConfig, initLora, loraSites } from '../../../services/core/lora.ts';
import { parseClipConfig } from '../../../services/io/hf-config.ts';
import { adapterWeightsBytes, factorsOf } from '../../../services/io/peft.ts';
import { hostTensor, type HostTensor } from '../../../services/core/tensor.ts';
import { parseSafetensors, writeSafetensors } from '../../../services/io/safetensors.ts';

const RUNS = 600;
const FILE = 'adapter_model.safetensors';

const model = parseClipConfig(JSON.parse(readFileSync(new URL('../../fixtures/tiny-clip-f32/config.json', import.meta.url), 'utf8')), 'config.json');
const config = { ...defaultLoraConfig, rank: 2 };
const sites = loraSites(model, config);
const valid = adapterWeightsBytes(initLora(model, config, 1));

type Header = Record<string, { dtype: unknown; shape: unknown; data_offsets: unknown } | Record<string, unknown>>;
interface Parts {
  header: Header;
  data: Uint8Array;
  /** header length to write instead of the true one */
  claimedLength?: bigint;
}

function split(bytes: Uint8Array): Parts {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))), data: bytes.slice(8 + length) };
}

function join({ header, data, claimedLength }: Parts): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, claimedLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const tensorNames = Object.keys(split(valid).header).filter((k) => k !== '__metadata__');

/** Edits of the adapter's tensors, written back as a well-formed file: what reaches the PEFT checks. */
type TensorEdit = (tensors: Map<string, HostTensor>) => void;
const tensorEdit: fc.Arbitrary<TensorEdit> = fc.oneof(
  fc.nat().map((i) => (m: Map<string, HostTensor>) => void m.delete(tensorNames[i % tensorNames.length])),
  fc.nat().map((i) => (m: Map<string, HostTensor>) => {
    const name = tensorNames[i % tensorNames.length];
    const t = m.get(name)!;
    m.set(name, hostTensor([...t.shape].reverse(), t.data));
  }),
  fc.nat().map((i) => (m: Map<string, HostTensor>) => {
    const name = tensorNames[i % tensorNames.length];
    const [rows, cols] = m.get(name)!.shape;
    m.set(name, hostTensor([rows + 1, cols], new Float32Array((rows + 1) * cols)));
  }),
  fc.constantFrom('base_model.model.text_model.encoder.layers.0.mlp.fc1.lora_A.weight', 'evil').map((name) => (m: Map<string, HostTensor>) => void m.set(name, hostTensor([1], new Float32Array(1)))),
);
type Edit = (p: Parts) => void;
const entry = (p: Parts, i: number) => p.header[tensorNames[i % tensorNames.length]] as Record<string, unknown>;

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.constantFrom(0n, 3n, 50_000_000n, 1n << 40n).map((n) => (p: Parts) => void (p.claimedLength = n)),
  fc.tuple(fc.nat(), fc.constantFrom('F8_E4M3', 'F64', 'I8', 'F16', 7)).map(([i, dtype]) => (p: Parts) => void (entry(p, i).dtype = dtype)),
  fc.tuple(fc.nat(), fc.oneof(fc.array(fc.integer({ min: -1, max: 40 }), { maxLength: 3 }), fc.constant('2x32'))).map(([i, shape]) => (p: Parts) => void (entry(p, i).shape = shape)),
  fc.tuple(fc.nat(), fc.integer({ min: -16, max: 16 }), fc.integer({ min: -16, max: 16 })).map(([i, db, de]) => (p: Parts) => {
    const [b, e] = entry(p, i).data_offsets as [number, number];
    entry(p, i).data_offsets = [b + db, e + de];
  }),
  fc.tuple(fc.nat(), fc.constantFrom([1], 'x', null)).map(([i, offsets]) => (p: Parts) => void (entry(p, i).data_offsets = offsets)),
  fc.constantFrom({ format: 7 }, [], 'pt').map((metadata) => (p: Parts) => void (p.header.__metadata__ = metadata as never)),
  fc.nat().map((i) => (p: Parts) => void delete p.header[tensorNames[i % tensorNames.length]]),
  fc.constantFrom('base_model.model.text_model.encoder.layers.0.mlp.fc1.lora_A.weight', 'evil').map((name) => (p: Parts) => {
    p.header[name] = { dtype: 'F32', shape: [1], data_offsets: [p.data.length, p.data.length + 4] };
    const data = new Uint8Array(p.data.length + 4);
    data.set(p.data);
    p.data = data;
  }),
  fc.integer({ min: 1, max: 64 }).map((n) => (p: Parts) => void (p.data = p.data.slice(0, Math.max(0, p.data.length - n)))),
  fc.integer({ min: 1, max: 8 }).map((n) => (p: Parts) => void (p.data = Uint8Array.from([...p.data, ...new Uint8Array(n)]))),
);

const CHECKS = [
  ['header length above the limit', /safetensors header of \d+ bytes exceeds/],
  ['header length beyond the file', /header claims \d+ bytes but the file has only/],
  ['header JSON', /header is not valid UTF-8 JSON|header must be a JSON object/],
  ['metadata', /__metadata__/],
  ['entry: dtype', /has unsupported dtype/],
  ['entry: shape', /has invalid shape/],
  ['entry: data_offsets', /has invalid data_offsets|has no \{dtype, shape, data_offsets\} entry/],
  ['entry: span ≠ dtype × shape', /span \d+ bytes but/],
  ['entry: past the end (truncated)', /run past the end of the data/],
  ['tiling: overlap, gap, trailing bytes', /overlaps tensor|belong to no tensor|tensors cover \d+ bytes of a \d+-byte data buffer/],
  ['PEFT: missing tensor', /missing tensor "/],
  ['PEFT: tensor shape', /has shape \[.*\], expected/],
  ['PEFT: not a LoRA factor', /is not a LoRA factor of this model/],
] as const;

test(`structured fuzz: mutated PEFT adapter files reach the safetensors entry and tiling checks and the PEFT checks (${RUNS} runs)`, (t) => {
  const counts = new Map<string, number>();
  const add = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  assert.equal(factorsOf(parseSafetensors(valid, FILE).tensors, config, sites, FILE).a.length, sites.length, 'the valid file reads');
  fc.assert(
    fc.property(fc.array(tensorEdit, { maxLength: 1 }), fc.array(edit, { maxLength: 2 }), (tensorEdits, edits) => {
      const tensors = new Map(parseSafetensors(valid, FILE).tensors);
      for (const e of tensorEdits) e(tensors);
      const parts = split(tensorEdits.length ? writeSafetensors(tensors) : valid);
      for (const e of edits) e(parts);
      const bytes = join(parts);
      try {
        const file = parseSafetensors(bytes, FILE);
        add('past the safetensors checks');
        factorsOf(file.tensors, config, sites, FILE);
        add('accepted');
      } catch (err) {
        if (!(err instanceof AdvclipError)) throw err;
        assert.ok(err.message.startsWith(FILE), `names the file: ${err.message}`);
        const check = CHECKS.find(([, pattern]) => pattern.test(err.message))?.[0] ?? `other: ${err.message}`;
        add(`refused: ${check}`);
      }
    }),
    { numRuns: RUNS, seed: 31, endOnFailure: true },
  );
  const summary = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k} ${v}`).join(', ');
  t.diagnostic(`PEFT adapter file cases: ${summary}`);
  const get = (k: string) => counts.get(k) ?? 0;
  assert.equal([...counts.keys()].filter((k) => k.startsWith('refused: other')).length, 0, `every refusal is one of the known checks: ${summary}`);
  const stoppedBeforeEntries = ['header length above the limit', 'header length beyond the file', 'header JSON'].reduce((n, c) => n + get(`refused: ${c}`), 0);
  assert.ok(stoppedBeforeEntries <= 0.25 * RUNS, `at most a quarter stop before the header's entries are read: ${summary}`);
  for (const [check] of CHECKS) if (check !== 'header JSON') assert.ok(get(`refused: ${check}`) >= 5, `check "${check}" reached at least 5 times: ${summary}`);
});
