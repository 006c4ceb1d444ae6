/**
 * Small line charts as SVG, rasterised to PNG by sharp (librsvg), for the
 * demo report: no browser or plotting stack needed.
 */
import sharp from 'sharp';

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface ChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly yRange?: readonly [number, number];
  /** Default: the data's extent. */
  readonly xRange?: readonly [number, number];
  readonly xTicks?: readonly { value: number; label: string }[];
  /** Labels of the y ticks (default: 2 decimals on a range under 5, else 1). */
  readonly yTickFormat?: (value: number) => string;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function lineChartSvg(spec: ChartSpec, width = 640, height = 400): string {
  const m = { left: 64, right: 160, top: 40, bottom: 52 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = spec.series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const [x0, x1] = spec.xRange ?? [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = spec.yRange ?? [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => m.left + (x1 === x0 ? w / 2 : ((x - x0) / (x1 - x0)) * w);
  const sy = (y: number) => m.top + h - (y1 === y0 ? h / 2 : ((y - y0) / (y1 - y0)) * h);
  const yTicks = Array.from({ length: 6 }, (_, i) => y0 + ((y1 - y0) * i) / 5);
  const xTicks = spec.xTicks ?? Array.from({ length: 6 }, (_, i) => ({ value: x0 + ((x1 - x0) * i) / 5, label: (x0 + ((x1 - x0) * i) / 5).toFixed(0) }));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${m.left + w / 2}" y="24" text-anchor="middle" font-size="15">${escape(spec.title)}</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`,
  ];
  for (const t of yTicks) {
    parts.push(`<line x1="${m.left}" x2="${m.left + w}" y1="${sy(t)}" y2="${sy(t)}" stroke="#ddd"/>`);
    parts.push(`<text x="${m.left - 6}" y="${sy(t) + 4}" text-anchor="end">${escape(spec.yTickFormat ? spec.yTickFormat(t) : Math.abs(y1 - y0) < 5 ? t.toFixed(2) : t.toFixed(1))}</text>`);
  }
  for (const t of xTicks) parts.push(`<text x="${sx(t.value)}" y="${m.top + h + 18}" text-anchor="middle">${escape(t.label)}</text>`);
  parts.push(`<text x="${m.left + w / 2}" y="${height - 12}" text-anchor="middle">${escape(spec.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">${escape(spec.yLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (pts.length) parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ')}"/>`);
    if (pts.length <= 12) for (const p of pts) parts.push(`<circle cx="${sx(p[0])}" cy="${sy(p[1])}" r="3" fill="${colour}"/>`);
    parts.push(`<line x1="${m.left + w + 12}" x2="${m.left + w + 32}" y1="${m.top + 14 + i * 20}" y2="${m.top + 14 + i * 20}" stroke="${colour}" stroke-width="3"/>`);
    parts.push(`<text x="${m.left + w + 38}" y="${m.top + 18 + i * 20}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export async function writeChartPng(spec: ChartSpec, path: string): Promise<void> {
  await sharp(Buffer.from(lineChartSvg(spec))).png().toFile(path);
}

export interface GridSpec {
  readonly columns: number;
  readonly cellWidth: number;
  readonly cellHeight: number;
  /** A heading above the grid. */
  readonly title?: string;
  /** A smaller line under the title. */
  readonly subtitle?: string;
}

/** Charts of lineChartSvg, row by row, in one SVG. */
export function chartGridSvg(charts: readonly ChartSpec[], grid: GridSpec): string {
  const { columns, cellWidth, cellHeight } = grid;
  const head = grid.title ? (grid.subtitle ? 56 : 40) : 0;
  const rows = Math.ceil(charts.length / columns);
  const width = columns * cellWidth;
  const height = head + rows * cellHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  if (grid.title) parts.push(`<text x="${width / 2}" y="28" text-anchor="middle" font-size="20">${escape(grid.title)}</text>`);
  if (grid.title && grid.subtitle) parts.push(`<text x="${width / 2}" y="48" text-anchor="middle" font-size="13" fill="#555">${escape(grid.subtitle)}</text>`);
  charts.forEach((chart, i) => {
    const x = (i % columns) * cellWidth;
    const y = head + Math.floor(i / columns) * cellHeight;
    parts.push(`<g transform="translate(${x} ${y})">`, lineChartSvg(chart, cellWidth, cellHeight), '</g>');
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export async function writeChartGridPng(charts: readonly ChartSpec[], grid: GridSpec, path: string): Promise<void> {
  await sharp(Buffer.from(chartGridSvg(charts, grid))).png({ palette: true, compressionLevel: 9 }).toFile(path);
}
