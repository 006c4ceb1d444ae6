/**
 * Containment of data paths. A split file is data, not code: whoever wrote
 * it must not be able to make a worker read /etc/passwd or another tenant's
 * files, so every image it names must resolve, symlinks followed, to a file
 * inside the data set's image directory.
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { dataLoss, invalidArgument, notFound } from '../core/errors.ts';

/** The real path of an existing directory; `what` says what it is for in errors. */
export async function realDirectory(path: string, what: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    throw ioError(path, what, error);
  }
  if (!(await stat(real)).isDirectory()) throw invalidArgument(`${path}: ${what} is not a directory`);
  return real;
}

/** True when `path` exists and is a directory (symlinks followed). */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Resolves `relPath` (as written in the file `where`) against `rootReal`, a
 * real directory path, and returns the real path of the file it names.
 * Absolute paths, `..` escapes and symlinks leading out are rejected with
 * INVALID_ARGUMENT before and after resolving; a missing file is NOT_FOUND.
 */
export async function resolveInside(rootReal: string, relPath: string, where: string): Promise<string> {
  if (relPath === '' || isAbsolute(relPath) || !isInside(rootReal, resolve(rootReal, relPath))) {
    throw outside(relPath, rootReal, where);
  }
  let real: string;
  try {
    real = await realpath(resolve(rootReal, relPath));
  } catch (error) {
    throw ioError(resolve(rootReal, relPath), `image listed in ${where}`, error);
  }
  if (!isInside(rootReal, real)) throw outside(relPath, rootReal, where);
  return real;
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

const outside = (relPath: string, root: string, where: string) =>
  invalidArgument(`${where}: image path "${relPath}" is outside the data root ${root}`);

function ioError(path: string, what: string, error: unknown) {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(`${path}: ${what} does not exist`);
  return dataLoss(`${path}: cannot read ${what} (${error instanceof Error ? error.message : String(error)})`);
}
