import { readdirSync } from 'node:fs';
import sharp from 'sharp';
const root = process.argv[2];
const cls = readdirSync(root).sort();
const tiles: sharp.OverlayOptions[] = [];
cls.forEach((c, r) => readdirSync(`${root}/${c}`).sort().slice(0, 6).forEach((f, j) => tiles.push({ input: `${root}/${c}/${f}`, left: 64 * j, top: 64 * r })));
await sharp({ create: { width: 384, height: 64 * cls.length, channels: 3, background: '#000' } }).composite(tiles).png().toFile(process.argv[3]);
console.log(cls);
