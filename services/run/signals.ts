/**
 * SIGTERM and SIGINT start a drain (once each): what a coordinator or a
 * sweep does then is `drain`'s; `announce` says it in the log.
 */
import type { Logger } from '../protocol/log.ts';

/** Drains on the first SIGTERM or SIGINT; the returned function removes the handlers. */
export function drainOnSignals(log: Logger, announce: string, drain: () => void): () => void {
  const on = (signal: string) => () => {
    log.warn(`${signal}: ${announce}`);
    drain();
  };
  const onTerm = on('SIGTERM');
  const onInt = on('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  return () => {
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
  };
}
