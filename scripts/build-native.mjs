#!/usr/bin/env node
/**
 * Builds the OpenBLAS addon of the `native` backend (native/ → native/build/
 * Release/advclip_native.node) with node-gyp. Runs as the root package's
 * `install` script, so `npm ci` builds it where it can; it never fails the
 * install: without OpenBLAS, a compiler or node-gyp it says why and the wasm
 * backend is used instead. `--strict` exits 1 when the addon is not built;
 * `--force` rebuilds even when the addon is newer than its sources.
 *
 * Needs: libdnnl-dev (oneDNN; its sgemm picks the CPU's widest ISA) or else
 * libopenblas-dev (Debian), g++, make, python3; node-gyp comes with npm.
 * ADVCLIP_NATIVE_BLAS=openblas builds against OpenBLAS even where oneDNN is.
 * Node's headers are taken from the local install when they are there (no
 * download), else node-gyp's own cache or download.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addonPath = join(nativeDir, 'build', 'Release', 'advclip_native.node');
const strict = process.argv.includes('--strict');
const force = process.argv.includes('--force');
const hint = 'install libdnnl-dev (or libopenblas-dev), g++, make, python3 (Debian: apt-get install -y libdnnl-dev g++ make python3), then run `node scripts/build-native.mjs`';

function done(built, message) {
  console.log(`advclip native: ${message}${built ? '' : ` — the wasm backend is used instead; to build it, ${hint}`}`);
  process.exit(built || !strict ? 0 : 1);
}

/** npm's own node-gyp (npm sets npm_config_node_gyp for lifecycle scripts), else the one beside this node, else PATH. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency of ours: fine
  }
  const found = candidates.find((p) => p && existsSync(p));
  if (found) return [process.execPath, found];
  const onPath = spawnSync('node-gyp', ['--version'], { encoding: 'utf8' });
  return onPath.status === 0 ? ['node-gyp'] : null;
}

/** `--nodedir=<prefix>` when this node's headers are installed beside it (so nothing is downloaded). */
function localHeaders() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  const versionHeader = join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(versionHeader)) return [];
  const text = readFileSync(versionHeader, 'utf8');
  const part = (name) => text.match(new RegExp(`#define ${name} (\\d+)`))?.[1];
  const version = `v${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}`;
  return version === process.version ? [`--nodedir=${prefix}`] : [];
}

function upToDate() {
  if (force || !existsSync(addonPath)) return false;
  const built = statSync(addonPath).mtimeMs;
  const sources = [join(nativeDir, 'binding.gyp'), ...readdirSync(join(nativeDir, 'src')).map((f) => join(nativeDir, 'src', f))];
  return sources.every((f) => statSync(f).mtimeMs <= built);
}

/** Loads the addon in a child process: a missing shared library shows here, not at first use. */
function probe() {
  const code = `const a = require(${JSON.stringify(addonPath)}); const i = a.info(); console.log(i.blas + ', kernel ' + i.core + ', ' + i.threads + ' threads');`;
  const run = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  return run.status === 0 ? { ok: true, text: run.stdout.trim() } : { ok: false, text: (run.stderr.trim().split('\n').find((l) => /Error/.test(l)) ?? run.stderr.trim()).slice(0, 300) };
}

if (process.env.ADVCLIP_SKIP_NATIVE) done(false, 'not built (ADVCLIP_SKIP_NATIVE is set)');
if (upToDate()) {
  const loaded = probe();
  done(loaded.ok, loaded.ok ? `up to date (${loaded.text})` : `built but does not load: ${loaded.text}`);
}
const gyp = findNodeGyp();
if (!gyp) done(false, 'not built: node-gyp not found (it comes with npm)');
const [command, ...prefixArgs] = gyp;
// node-gyp hands unknown --name=value options to gyp as variables (binding.gyp's with_dnnl)
const rebuild = (blas) => spawnSync(command, [...prefixArgs, 'rebuild', `--directory=${nativeDir}`, ...localHeaders(), ...blas], { encoding: 'utf8', cwd: root });
const openblasOnly = process.env.ADVCLIP_NATIVE_BLAS === 'openblas';
let build = rebuild(openblasOnly ? ['--with_dnnl=0'] : []);
if (build.status !== 0 && !openblasOnly) {
  // oneDNN's headers without a usable library (or a broken install): OpenBLAS may still build
  const retry = rebuild(['--with_dnnl=0']);
  if (retry.status === 0) console.log('advclip native: the oneDNN build failed; built against OpenBLAS instead');
  build = retry.status === 0 ? retry : build;
}
if (build.status !== 0) {
  const output = `${build.stdout ?? ''}\n${build.stderr ?? ''}`;
  const reasons = [
    [/Could not find any Python/i, 'python3 not found (node-gyp needs it)'],
    [/dnnl\.h|-ldnnl|-lgomp/i, 'oneDNN headers or library not found'],
    [/cblas\.h|-lopenblas|openblas/i, 'OpenBLAS headers or library not found'],
    [/make: (command )?not found|not found: make|[gc]\+\+: (command )?not found|cc1plus/i, 'no C++ toolchain (g++, make)'],
    [/getaddrinfo|ENOTFOUND|ECONNREFUSED|EAI_AGAIN/i, "Node's headers are not installed and could not be downloaded"],
  ];
  const reason = reasons.find(([pattern]) => pattern.test(output))?.[1] ?? 'node-gyp failed';
  const detail = output.split('\n').filter((l) => /error|not found/i.test(l)).slice(0, 3).join(' | ').slice(0, 400);
  done(false, `not built: ${reason}${detail ? ` (${detail})` : ''}`);
}
const loaded = probe();
done(loaded.ok, loaded.ok ? `built ${addonPath.slice(root.length + 1)} (${loaded.text})` : `built but does not load: ${loaded.text}`);
