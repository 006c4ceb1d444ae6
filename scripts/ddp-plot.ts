/**
 * docs/ddp-projection.png: the table "Projection to 1,000 GPU workers" of
 * docs/scaling.md as a plot, from the same formulas — bytes per step
 * through the coordinator (ours) against a bandwidth-optimal DDP ring
 * all-reduce per worker, ViT-B/16 shapes, batch 32, τ = 2, 100 classes,
 * fp32 on the wire. Arithmetic, not runs. Prints the table's rows too, so
 * the doc's numbers can be checked against it.
 *
 *   npx tsx scripts/ddp-plot.ts [--out docs/ddp-projection.png]
 */
import { parseArgs } from 'node:util';
import { writeChartGridPng, type ChartSpec } from '../services/io/plot.ts';

const { values: flags } = parseArgs({ options: { out: { type: 'string', default: 'docs/ddp-projection.png' } } });

const BATCH = 32;
const TAU = 2;
const CLASSES = 100;
const FLOAT = 4;
/** δ: 224 × 224 × 3 */
const DELTA = 224 * 224 * 3 * FLOAT;
const VISION_LORA = 110_592 * FLOAT;
const TEXT_LORA = 73_728 * FLOAT;
/** G: the class text features, classes × 512 */
const TEXT_FEATURES = CLASSES * 512 * FLOAT;
const TEXT_GROUPS = Math.ceil(CLASSES / 4);
/** an adapter version (184,320 parameters and the safetensors header), once per worker per step */
const ADAPTER = 757_760;
const NIC_BYTES_PER_S = 10e9 / 8;
/** the default chunk is 8 samples; more workers than 4 need smaller chunks, down to 1 sample */
const MIN_CHUNKS = BATCH / 8;

interface Row {
  readonly workers: number;
  readonly chunks: number;
  /** tasks out and results back through the coordinator's NIC, per step */
  readonly ours: number;
  readonly adapterOut: number;
  /** what DDP all-reduces per step: τ δ-gradients and the LoRA gradients */
  readonly ddp: number;
}

function row(workers: number): Row {
  const chunks = Math.min(BATCH, Math.max(MIN_CHUNKS, workers));
  const out = (TAU + 1) * Math.min(workers, chunks) * DELTA + Math.min(workers, TEXT_GROUPS) * TEXT_FEATURES;
  const back = TAU * chunks * DELTA + chunks * VISION_LORA + TEXT_GROUPS * TEXT_LORA;
  const reduced = TAU * DELTA + VISION_LORA + TEXT_LORA;
  return { workers, chunks, ours: out + back, adapterOut: workers * ADAPTER, ddp: ((2 * (workers - 1)) / workers) * reduced };
}

const rows = [1, 2, 4, 8, 16, 32].map(row);
const mb = (bytes: number) => bytes / 1e6;
const ms = (bytes: number) => (1000 * bytes) / NIC_BYTES_PER_S;
for (const r of rows) {
  process.stdout.write(
    `| ${r.workers} | ${r.chunks} of ${BATCH / r.chunks} | ${mb(r.ours).toFixed(1)} MB | ${ms(r.ours).toFixed(1)} ms | ${mb(r.adapterOut).toFixed(1)} MB | ${r.ddp ? `${mb(r.ddp).toFixed(2)} MB` : '0'} | ${r.ddp ? `${ms(r.ddp).toFixed(2)} ms` : '0'} |\n`,
  );
}

const x = (r: Row) => Math.log2(r.workers);
const xTicks = rows.map((r) => ({ value: x(r), label: String(r.workers) }));
const charts: ChartSpec[] = [
  {
    title: 'Bytes per step through one NIC',
    xLabel: 'workers on one run',
    yLabel: 'MB per step',
    xTicks,
    series: [
      { name: 'ours (coordinator)', points: rows.map((r) => [x(r), mb(r.ours)]) },
      { name: 'DDP (per worker)', points: rows.map((r) => [x(r), mb(r.ddp)]) },
      // adapter versions leave from NATS, another NIC
      { name: '+ adapter versions', points: rows.map((r) => [x(r), mb(r.ours + r.adapterOut)]) },
    ],
    yRange: [0, 160],
    yTickFormat: (v) => v.toFixed(0),
  },
  {
    title: 'That NIC’s time per step at 10 GbE',
    xLabel: 'workers on one run',
    yLabel: 'ms per step',
    xTicks,
    series: [
      { name: 'ours (coordinator)', points: rows.map((r) => [x(r), ms(r.ours)]) },
      { name: 'DDP (per worker)', points: rows.map((r) => [x(r), ms(r.ddp)]) },
    ],
    yRange: [0, 100],
    yTickFormat: (v) => v.toFixed(0),
  },
];
await writeChartGridPng(charts, { columns: 2, cellWidth: 640, cellHeight: 380, title: 'Projection: AdvCLIP-LoRA through one coordinator vs DDP ring all-reduce', subtitle: `ViT-B/16 shapes, batch ${BATCH}, τ = ${TAU}, ${CLASSES} classes, fp32; arithmetic from docs/scaling.md, not runs` }, flags.out);
process.stdout.write(`wrote ${flags.out}\n`);
