/**
 * CLIP models from the Hugging Face Hub, in the cache Python's huggingface_hub
 * shares (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub):
 *
 *   models--owner--name/refs/<revision>           the commit a branch or tag was at
 *   models--owner--name/blobs/<etag>              file contents, named by their hash
 *   models--owner--name/snapshots/<commit>/<file> → ../../blobs/<etag>
 *
 * The HTTP side (revision → commit, file size and etag, the download itself,
 * including Xet-stored files) is @huggingface/hub's. What it leaves out is
 * ours: every file of one snapshot comes from one commit, a blob is written
 * to a temporary file, checked against its size and its etag (sha256 for LFS
 * files, the git blob sha1 otherwise) and only then renamed into place, so a
 * truncated or corrupt download is never read as a model; HF_HUB_OFFLINE=1
 * reads the cache alone; a failed request names the repo and the file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { downloadFile, fileDownloadInfo, HubApiError, modelInfo, type FileDownloadInfoOutput } from '@huggingface/hub';
import { AdvclipError, dataLoss, invalidArgument, notFound } from '../core/errors.ts';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** `owner/name` on the Hub, at a branch, tag or commit. */
export interface HubModelRef {
  readonly repo: string;
  readonly revision: string;
}

/** Reports bytes of one file as they arrive; `done === total` once at the end. */
export type HubProgress = (file: string, done: number, total: number) => void;

export interface HubOptions {
  /** HF_ENDPOINT (default https://huggingface.co) */
  readonly endpoint: string;
  /** HF_TOKEN, else the token file `huggingface-cli login` writes */
  readonly token?: string;
  /** HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub */
  readonly cacheDir: string;
  /** HF_HUB_OFFLINE=1: read the cache only */
  readonly offline: boolean;
  readonly progress?: HubProgress;
  /** told when the Hub cannot be reached and the cached snapshot is used instead */
  readonly warn?: (message: string) => void;
}

const NAME_PART = '[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?';
const REPO_ID = new RegExp(`^(${NAME_PART}/${NAME_PART})(?:@([A-Za-z0-9._/-]+))?$`);
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * `owner/name` or `owner/name@revision` as a Hub reference, or null for
 * anything else (an absolute path, `./x`, three segments, `..`).
 */
export function parseHubModelRef(spec: string): HubModelRef | null {
  const m = REPO_ID.exec(spec);
  if (!m || spec.includes('..')) return null;
  const revision = m[2] ?? 'main';
  if (revision.startsWith('/') || revision.endsWith('/')) return null;
  return { repo: m[1], revision };
}

const truthy = (v: string | undefined) => v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.trim().toLowerCase());

/** The options the environment gives, the way huggingface_hub reads it. */
export async function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<HubOptions> {
  const hfHome = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  let token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  if (!token) {
    const tokenFile = env.HF_TOKEN_PATH || join(hfHome, 'token');
    token = (await readFile(tokenFile, 'utf8').catch(() => '')).trim() || undefined;
  }
  return {
    endpoint: (env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, ''),
    token,
    cacheDir: env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome, 'hub'),
    offline: truthy(env.HF_HUB_OFFLINE),
    progress: stderrProgress(),
    warn: (message) => process.stderr.write(`advclip: warn: ${message}\n`),
  };
}

/** A bar on a terminal; elsewhere (pods, CI) a JSON log line per file and every 10 s. */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): HubProgress {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  let last = 0;
  return (file, done, total) => {
    const now = Date.now();
    const finished = done === total;
    if (stream.isTTY) {
      if (!finished && now - last < 200) return;
      last = now;
      const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
      stream.write(`\radvclip: ${file} ${mb(done)}/${mb(total)} MB ${pct}%${finished ? '\n' : ''}`);
      return;
    }
    if (done !== 0 && !finished && now - last < 10_000) return;
    last = now;
    stream.write(`${JSON.stringify({ time: new Date(now).toISOString(), level: 'info', msg: `download ${file}`, bytes: done, total })}\n`);
  };
}

/** The cache folder of a repo, as huggingface_hub names it. */
export const repoCacheDir = (cacheDir: string, repo: string) => join(cacheDir, `models--${repo.split('/').join('--')}`);

const CONFIG = 'config.json';
const WEIGHTS = 'model.safetensors';
const WEIGHTS_INDEX = 'model.safetensors.index.json';
/** Small files a CLIP checkpoint may carry; ours reads tokenizer.json, the rest keep the snapshot usable from Python. */
const OPTIONAL_FILES = ['preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];

/**
 * The snapshot directory of `ref`, downloaded into the cache when it is not
 * there: config.json, the safetensors weights (one file or an index and its
 * shards) and the tokenizer and preprocessor files the repo has.
 */
export async function resolveHubModel(ref: HubModelRef, opts: HubOptions): Promise<string> {
  const where = `${ref.repo}@${ref.revision}`;
  const root = repoCacheDir(opts.cacheDir, ref.repo);
  if (opts.offline) {
    const cached = await cachedSnapshot(root, ref);
    if (cached) return cached;
    throw notFound(`${where}: HF_HUB_OFFLINE=1 and no complete snapshot of it in ${opts.cacheDir} (download it once with the Hub reachable, or pass a model directory)`);
  }
  const hub = { hubUrl: opts.endpoint, accessToken: opts.token };
  let commit: string;
  let files: string[];
  try {
    const info = await modelInfo({ ...hub, name: ref.repo, revision: ref.revision, additionalFields: ['sha', 'filePaths'] });
    commit = info.sha;
    files = info.filePaths ?? [];
  } catch (error) {
    if (isUnreachable(error)) {
      const cached = await cachedSnapshot(root, ref);
      if (cached) {
        opts.warn?.(`${where}: ${opts.endpoint} unreachable (${describe(error)}); using the cached snapshot ${cached}`);
        return cached;
      }
    }
    throw hubError(where, 'the repo revision', opts, error);
  }
  if (typeof commit !== 'string' || !COMMIT.test(commit)) {
    throw dataLoss(`${where}: ${opts.endpoint} answered commit ${JSON.stringify(commit)}, expected 40 hex digits`);
  }
  const snapshot = join(root, 'snapshots', commit);
  const fetchOne = (file: string) => cacheFile({ ...ref, commit, file, root, snapshot, where }, opts);
  if (!files.includes(CONFIG)) throw notFound(`${where}: the repo has no ${CONFIG}; is it a model repo?`);
  await fetchOne(CONFIG);
  if (files.includes(WEIGHTS)) {
    await fetchOne(WEIGHTS);
  } else if (files.includes(WEIGHTS_INDEX)) {
    const index = await fetchOne(WEIGHTS_INDEX);
    for (const shard of await shardsOf(index, where)) await fetchOne(shard);
  } else {
    const other = files.filter((f) => /\.(bin|h5|msgpack)$/.test(f));
    const hint = other.length ? ` (it has ${other.join(', ')}: convert them to safetensors, or pick a revision that has them, e.g. the Hub's conversion pull request: ${ref.repo}@refs/pr/N)` : '';
    throw notFound(`${where}: no ${WEIGHTS} or ${WEIGHTS_INDEX} in the repo${hint}`);
  }
  for (const file of OPTIONAL_FILES) if (files.includes(file)) await fetchOne(file);
  if (ref.revision !== commit) {
    const refFile = join(root, 'refs', ref.revision);
    await mkdir(dirname(refFile), { recursive: true });
    await writeAtomic(refFile, commit);
  }
  return snapshot;
}

/** The snapshot a revision points at, when config.json and its weights are all in it. */
async function cachedSnapshot(root: string, ref: HubModelRef): Promise<string | null> {
  const commit = COMMIT.test(ref.revision)
    ? ref.revision
    : (await readFile(join(root, 'refs', ref.revision), 'utf8').catch(() => '')).trim();
  if (!COMMIT.test(commit)) return null;
  const snapshot = join(root, 'snapshots', commit);
  if (!(await isFile(join(snapshot, CONFIG)))) return null;
  if (await isFile(join(snapshot, WEIGHTS))) return snapshot;
  const index = join(snapshot, WEIGHTS_INDEX);
  if (!(await isFile(index))) return null;
  for (const shard of await shardsOf(index, ref.repo)) if (!(await isFile(join(snapshot, shard)))) return null;
  return snapshot;
}

async function shardsOf(indexPath: string, where: string): Promise<string[]> {
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (error) {
    throw dataLoss(`${where}: ${WEIGHTS_INDEX}: ${(error as Error).message}`);
  }
  if (typeof map !== 'object' || map === null) throw invalidArgument(`${where}: ${WEIGHTS_INDEX} has no weight_map object`);
  const shards = [...new Set(Object.values(map))];
  const bad = shards.find((s) => typeof s !== 'string' || !/^[\w.-]+\.safetensors$/.test(s) || s.includes('..'));
  if (bad !== undefined) throw invalidArgument(`${where}: ${WEIGHTS_INDEX} names shard ${JSON.stringify(bad)}, expected a .safetensors file name`);
  return shards as string[];
}

interface FileJob {
  readonly repo: string;
  readonly commit: string;
  readonly file: string;
  readonly root: string;
  readonly snapshot: string;
  readonly where: string;
}

/** One file into blobs/ (verified) and its snapshot link; returns the link's path. */
async function cacheFile(job: FileJob, opts: HubOptions): Promise<string> {
  const link = join(job.snapshot, job.file);
  if (await isFile(link)) return link;
  const hub = { repo: { type: 'model' as const, name: job.repo }, path: job.file, revision: job.commit, hubUrl: opts.endpoint, accessToken: opts.token };
  let info: FileDownloadInfoOutput | null;
  try {
    info = await fileDownloadInfo(hub);
  } catch (error) {
    throw hubError(job.where, job.file, opts, error);
  }
  if (!info) throw notFound(`${job.where}: ${job.file} is not in the repo at commit ${job.commit}`);
  const etag = info.etag.replace(/^W\//, '').replace(/"/g, '');
  if (!/^[\w.-]+$/.test(etag)) throw dataLoss(`${job.where}: ${job.file}: etag ${JSON.stringify(info.etag)} is not a file name`);
  const blob = join(job.root, 'blobs', etag);
  await mkdir(dirname(blob), { recursive: true });
  if (!(await hasSize(blob, info.size))) await download(job, opts, hub, info, etag, blob);
  await mkdir(dirname(link), { recursive: true });
  const tmpLink = `${link}.${randomBytes(6).toString('hex')}.tmp`;
  await symlink(relative(dirname(link), blob), tmpLink);
  await rename(tmpLink, link);
  return link;
}

async function download(
  job: FileJob,
  opts: HubOptions,
  hub: Parameters<typeof downloadFile>[0],
  info: FileDownloadInfoOutput,
  etag: string,
  blob: string,
): Promise<void> {
  const what = `${job.where}: ${job.file}`;
  // A name of its own per download, so two processes sharing the cache never write one file.
  const incomplete = `${blob}.${process.pid}.${randomBytes(6).toString('hex')}.incomplete`;
  const check = contentCheck(etag, info.size);
  let done = 0;
  opts.progress?.(job.file, 0, info.size);
  const count = new Transform({
    transform(chunk: Buffer, _enc, next) {
      done += chunk.length;
      check.update(chunk);
      opts.progress?.(job.file, Math.min(done, info.size - 1), info.size);
      next(null, chunk);
    },
  });
  try {
    // One HTTP stream through resolve/ (xet: false) rather than Xet chunk
    // reconstruction: the bytes are hashed as they arrive, the path tests cover.
    const body = await downloadFile({ ...hub, downloadInfo: info, xet: false });
    if (!body) throw notFound(`${what} is not in the repo at commit ${job.commit}`);
    await pipeline(Readable.fromWeb(body.stream() as NodeReadableStream), count, createWriteStream(incomplete, { mode: 0o644 }));
    if (done !== info.size) throw dataLoss(`${what}: download truncated: ${done} of ${info.size} bytes`);
    const problem = check.verify();
    if (problem) throw dataLoss(`${what}: ${problem}; the download is corrupt and was discarded`);
    await rename(incomplete, blob);
    opts.progress?.(job.file, info.size, info.size);
  } catch (error) {
    await rm(incomplete, { force: true });
    if (error instanceof AdvclipError) throw error;
    if (!(error instanceof HubApiError) && done < info.size) {
      throw dataLoss(`${what}: download broke off after ${done} of ${info.size} bytes (${describe(error)}); nothing was kept`);
    }
    throw hubError(job.where, job.file, opts, error);
  }
}

/** What the etag says about the bytes: sha256 (LFS), the git blob sha1, or, for other etags, the size alone. */
function contentCheck(etag: string, size: number): { update(chunk: Buffer): void; verify(): string | null } {
  if (/^[0-9a-f]{64}$/.test(etag)) {
    const hash = createHash('sha256');
    return { update: (c) => hash.update(c), verify: () => mismatch('sha256', hash.digest('hex'), etag) };
  }
  if (/^[0-9a-f]{40}$/.test(etag)) {
    const hash = createHash('sha1').update(`blob ${size}\0`);
    return { update: (c) => hash.update(c), verify: () => mismatch('git blob sha1', hash.digest('hex'), etag) };
  }
  return { update: () => {}, verify: () => null };
}

const mismatch = (kind: string, got: string, want: string) => (got === want ? null : `${kind} ${got} does not match the etag ${want}`);

function hubError(where: string, file: string, opts: HubOptions, error: unknown): AdvclipError {
  if (error instanceof AdvclipError) return error;
  if (error instanceof TypeError && /access token/i.test(error.message)) {
    return invalidArgument(`${where}: HF_TOKEN is not a Hugging Face token (${error.message})`);
  }
  const at = `${where}: ${file} from ${opts.endpoint}`;
  if (error instanceof HubApiError) {
    const status = error.statusCode;
    if (status === 401 || status === 403) {
      const hint = opts.token ? 'HF_TOKEN is set but not accepted for this repo (gated: accept its terms on the Hub)' : 'set HF_TOKEN for a private or gated repo';
      return new AdvclipError('FAILED_PRECONDITION', `${at}: HTTP ${status}, not authorised; ${hint}`, { cause: error });
    }
    if (status === 404) return notFound(`${at}: HTTP 404, no such repo, revision or file (check the spelling; private repos also answer 404 without HF_TOKEN)`);
    return new AdvclipError(status >= 500 || status === 429 ? 'UNAVAILABLE' : 'INTERNAL', `${at}: HTTP ${status}: ${error.message}`, { cause: error });
  }
  if (isUnreachable(error)) {
    return new AdvclipError('UNAVAILABLE', `${at}: cannot reach the Hub (${describe(error)}); set HF_ENDPOINT for a mirror, or HF_HUB_OFFLINE=1 to use the cache`, { cause: error });
  }
  return new AdvclipError('INTERNAL', `${at}: ${describe(error)}`, { cause: error });
}

/** fetch's network failures (DNS, refused, reset) as opposed to HTTP answers. */
function isUnreachable(error: unknown): boolean {
  return error instanceof TypeError && /fetch failed|network/i.test(error.message);
}

function describe(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(error)}${cause ? ` (${cause})` : ''}`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function hasSize(path: string, size: number): Promise<boolean> {
  try {
    return (await stat(path)).size === size;
  } catch {
    return false;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

