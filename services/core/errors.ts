/**
 * The few typed errors of advclip. Every failure a user or a peer can cause
 * is one of these, with a code that says what kind of failure it is; the
 * protocol layer maps codes to gRPC status codes, the CLI prints `message`.
 */
export const ErrorCodes = [
  'INVALID_ARGUMENT', // a value the caller gave is wrong (flag, shape, dtype, range)
  'NOT_FOUND', // a file, class, version or worker that does not exist
  'DATA_LOSS', // a file or message is corrupt (bad header, truncated, wrong hash)
  'FAILED_PRECONDITION', // the system is not in a state to do this (stale round, not admitted)
  'RESOURCE_EXHAUSTED', // too large (message, header) or no capacity
  'UNAVAILABLE', // a peer or service cannot be reached right now
  'DEADLINE_EXCEEDED', // a peer did not answer in time
  'INTERNAL', // a bug: an invariant of our own code broke
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export class AdvclipError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdvclipError';
    this.code = code;
  }
}

export const invalidArgument = (message: string) => new AdvclipError('INVALID_ARGUMENT', message);
export const notFound = (message: string) => new AdvclipError('NOT_FOUND', message);
export const dataLoss = (message: string) => new AdvclipError('DATA_LOSS', message);
export const failedPrecondition = (message: string) => new AdvclipError('FAILED_PRECONDITION', message);

/**
 * A file that could not be read, by its errno: missing is NOT_FOUND; no
 * permission is FAILED_PRECONDITION (the file is there, the process's uid or
 * groups cannot read it: a deployment problem, not a missing file).
 */
export function unreadableFile(message: string, cause: unknown): AdvclipError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  const denied = errno === 'EACCES' || errno === 'EPERM';
  const hint = denied && typeof process.getuid === 'function' ? ` (uid ${process.getuid()}, groups ${process.getgroups?.().join(',') ?? '?'}: check the file's owner, group and mode)` : '';
  return new AdvclipError(denied ? 'FAILED_PRECONDITION' : 'NOT_FOUND', `${message}: ${(cause as Error).message}${hint}`, { cause });
}
