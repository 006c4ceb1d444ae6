/**
 * A loopback stand-in for the Hugging Face Hub's download routes, for one
 * repo at one commit: the revision API, resolve/<rev>/<file> (regular files
 * answered directly with a git-sha1 ETag; LFS files redirected to a CDN
 * route, with X-Linked-Etag = sha256 and X-Linked-Size), Range requests,
 * a token check, and faults (truncate, corrupt, 401, 404) per file.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const fixture = new URL('../fixtures/tiny-clip-f32/', import.meta.url).pathname;
export const REPO = 'tiny/clip-f32';
export const COMMIT = 'c0ffee'.padEnd(40, '7');
export const TOKEN = 'hf_loopbacktesttoken';
const LFS = new Set(['model.safetensors']);
export const FILES = ['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json'];

export type Fault = 'truncate' | 'corrupt' | '401' | '404';

export class FakeHub {
  readonly files = new Map(FILES.map((f) => [f, readFileSync(join(fixture, f))]));
  readonly faults = new Map<string, Fault>();
  /** files the repo listing leaves out, and extra names it lists (a repo of other formats) */
  readonly hidden = new Set<string>();
  readonly extraListed: string[] = [];
  requireToken = false;
  requests: string[] = [];
  private server!: Server;
  url = '';

  static gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
  static sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  etagOf = (file: string) => (LFS.has(file) ? FakeHub.sha256(this.files.get(file)!) : FakeHub.gitSha1(this.files.get(file)!));

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((ok) => this.server.close(() => ok()));
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent(new URL(req.url!, this.url).pathname);
    this.requests.push(`${req.headers.range ? 'RANGE ' : ''}${path}`);
    const authorised = req.headers.authorization === `Bearer ${TOKEN}`;
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (api) {
      if (api[1] !== REPO) return this.json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      if (this.requireToken && !authorised) return this.json(res, 401, { error: 'Invalid credentials in Authorization header' });
      if (api[2] !== 'main' && api[2] !== COMMIT) return this.json(res, 404, { error: 'Revision not found' }, { 'X-Error-Code': 'RevisionNotFound' });
      return this.json(res, 200, { _id: 'x', id: REPO, sha: COMMIT, private: false, siblings: [...FILES.filter((f) => !this.hidden.has(f)), ...this.extraListed].map((rfilename) => ({ rfilename })) });
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolve) {
      const [, repo, rev, file] = resolve;
      if (repo !== REPO) return this.json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      const fault = this.faults.get(file);
      if (fault === '401' || (this.requireToken && !authorised)) return this.json(res, 401, { error: `Access to ${repo} is restricted` });
      if (fault === '404' || !this.files.has(file) || (rev !== 'main' && rev !== COMMIT)) {
        return this.json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      }
      const common = { 'X-Repo-Commit': COMMIT, 'X-Linked-Etag': `"${this.etagOf(file)}"`, 'X-Linked-Size': String(this.files.get(file)!.length) };
      if (LFS.has(file)) {
        res.writeHead(302, { ...common, Location: `/cdn/${this.etagOf(file)}?file=${encodeURIComponent(file)}` }).end();
        return;
      }
      return this.body(req, res, file, { ...common, ETag: `"${this.etagOf(file)}"` });
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const file = new URL(req.url!, this.url).searchParams.get('file')!;
      return this.body(req, res, file, { ETag: `"${cdn[1]}"` });
    }
    this.json(res, 404, { error: `no route ${path}` });
  }

  /** The file, or the byte range asked for; a fault bends the full-body answer. */
  private body(req: IncomingMessage, res: ServerResponse, file: string, headers: Record<string, string>): void {
    let bytes = this.files.get(file)!;
    const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
    if (range) {
      const [start, end] = [Number(range[1]), Math.min(Number(range[2]), bytes.length - 1)];
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${bytes.length}`, 'Content-Length': String(end - start + 1) });
      res.end(bytes.subarray(start, end + 1));
      return;
    }
    const fault = this.faults.get(file);
    if (fault === 'corrupt') {
      bytes = Buffer.from(bytes);
      bytes[bytes.length - 1] ^= 0xff;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(bytes.length) });
    if (fault === 'truncate') {
      // half the promised bytes, then the connection drops
      res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
      return;
    }
    res.end(bytes);
  }
}

