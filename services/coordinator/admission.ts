/**
 * Which worker identities the coordinator admits, beyond the CA: an
 * optional allow-list file (only these) and a deny-list file of revoked
 * identities that is read again whenever it changes, so revoking a worker
 * needs no restart. One identity a line; blank lines and `#` comments are
 * ignored. A file that cannot be read at start fails the start; one that
 * goes bad later keeps the last good list and is logged.
 */
import { readFileSync, statSync } from 'node:fs';
import { failedPrecondition, notFound } from '../core/errors.ts';

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
