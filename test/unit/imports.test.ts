/**
 * The layering, checked on the import graph (madge): no import circle
 * anywhere in services/, bench/ or scripts/; services/core imports only
 * services/core (and packages) — the math never reaches for files, sockets
 * or the shells; and nothing in services/ climbs back up into services/cli,
 * which only turns flags into a RunSpec and prints.
 */
import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import madge from 'madge';

const root = fileURLToPath(new URL('../../', import.meta.url));

const graphOf = (dirs: string[]) => madge(dirs.map((d) => `${root}${d}`), { baseDir: root, fileExtensions: ['ts'], tsConfig: `${root}tsconfig.json`, excludeRegExp: [/node_modules/, /\/generated\//] });

test('no import circles in services/, bench/ or scripts/', async () => {
  const graph = await graphOf(['services', 'bench', 'scripts']);
  assert.ok(Object.keys(graph.obj()).length > 100, 'madge found the sources');
  assert.deepEqual(graph.circular(), [], 'import circles (a > b means a imports b, which leads back to a)');
});

test('services/core imports nothing outside services/core', async () => {
  const graph = await graphOf(['services/core']);
  const outside = Object.entries(graph.obj()).flatMap(([file, deps]) => deps.filter((d) => !relative(root, `${root}${d}`).startsWith('services/core/')).map((d) => `${file} → ${d}`));
  assert.ok(Object.keys(graph.obj()).length > 20, 'madge found the core');
  assert.deepEqual(outside, []);
});

test('nothing in services/ outside services/cli imports services/cli', async () => {
  const graph = await graphOf(['services']);
  const up = Object.entries(graph.obj())
    .filter(([file]) => !file.startsWith('services/cli/'))
    .flatMap(([file, deps]) => deps.filter((d) => d.startsWith('services/cli/')).map((d) => `${file} → ${d}`));
  assert.deepEqual(up, []);
});
