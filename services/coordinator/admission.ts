/**
 * Which worker identities the coordinator admits, beyond the CA: an
 * optional allow-list file (only these) and a deny-list file of revoked
 * identities that is read again whenever it changes, so revoking a worker
 * needs no restart. One identity a line; blank lines and `#` comments are
 * ignored. A file that cannot be read at start fails the start; one that
 * goes bad later keeps the last good list and is logged.
 */
import { readFileSync, statSync } from 'node:fs';
import { AdvclipError, failedPrecondition, notFound } from '../core/errors.ts';

export interface AdmissionOptions {
  /** only identities listed here are admitted */
  readonly allowFile?: string;
  /** identities listed here are refused; re-read when the file changes */
  readonly denyFile?: string;
  readonly warn: (message: string) => void;
}

interface Loaded {
  readonly ids: ReadonlySet<string>;
  readonly mtimeMs: number;
}

export const parseIdentityList = (text: string): Set<string> =>
  new Set(
    text
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean),
  );

function load(path: string): Loaded {
  try {
    const mtimeMs = statSync(path).mtimeMs;
    return { ids: parseIdentityList(readFileSync(path, 'utf8')), mtimeMs };
  } catch (err) {
    throw notFound(`identity list ${path} cannot be read: ${(err as Error).message}`);
  }
}

export class Admission {
  readonly #o: AdmissionOptions;
  readonly #allow: Loaded | null;
  #deny: Loaded | null;

  constructor(o: AdmissionOptions) {
    this.#o = o;
    this.#allow = o.allowFile ? load(o.allowFile) : null;
    this.#deny = o.denyFile ? load(o.denyFile) : null;
  }

  /** Throws FAILED_PRECONDITION, saying why, unless `identity` may join. */
  check(identity: string): void {
    const denied = this.#denied();
    if (denied.has(identity)) throw failedPrecondition(`worker identity "${identity}" is revoked (listed in ${this.#o.denyFile}): not admitted`);
    if (this.#allow && !this.#allow.ids.has(identity)) throw failedPrecondition(`worker identity "${identity}" is not in the allow-list ${this.#o.allowFile}: not admitted`);
  }

  #denied(): ReadonlySet<string> {
    const path = this.#o.denyFile;
    if (!path || !this.#deny) return new Set();
    try {
      if (statSync(path).mtimeMs !== this.#deny.mtimeMs) this.#deny = load(path);
    } catch (err) {
      this.#o.warn(`deny-list ${path}: ${(err as Error).message}; keeping the last one read (${this.#deny.ids.size} identities)`);
    }
    return this.#deny.ids;
  }
}

/** Register attempts one identity may make in a window before it is told to wait. */
export const DEFAULT_REGISTER_LIMIT = Object.freeze({ attempts: 20, windowMs: 60_000 });

/**
 * Counts Register attempts per key over a sliding window: a worker that
 * registers in a loop (a crash loop, a token being tried) gets
 * RESOURCE_EXHAUSTED instead of an admission each time. The server keys it
 * by identity and worker name: the K replicas of one `advclip worker
 * --replicas K` share their process's certificate and register once each.
 */
export class RegisterLimiter {
  readonly #attempts = new Map<string, number[]>();

  constructor(private readonly limit: { readonly attempts: number; readonly windowMs: number } = DEFAULT_REGISTER_LIMIT) {}

  /** Counts an attempt of `identity`; throws RESOURCE_EXHAUSTED past the limit. */
  attempt(identity: string, now = Date.now()): void {
    const recent = (this.#attempts.get(identity) ?? []).filter((t) => now - t < this.limit.windowMs);
    recent.push(now);
    this.#attempts.set(identity, recent);
    if (this.#attempts.size > 10_000) this.#forgetIdle(now);
    if (recent.length > this.limit.attempts) {
      const waitS = Math.ceil((recent[recent.length - this.limit.attempts - 1] + this.limit.windowMs - now) / 1000);
      throw new AdvclipError('RESOURCE_EXHAUSTED', `worker identity "${identity}" made ${recent.length} Register attempts in ${this.limit.windowMs / 1000} s (limit ${this.limit.attempts}): retry in ${waitS} s`);
    }
  }

  #forgetIdle(now: number): void {
    for (const [id, times] of this.#attempts) if (times.every((t) => now - t >= this.limit.windowMs)) this.#attempts.delete(id);
  }
}
