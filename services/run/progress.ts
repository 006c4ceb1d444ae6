/**
 * Progress of long work on stderr: a live bar with the step's numbers on a
 * terminal; elsewhere (CI, services, pipes) a log line every 10 seconds.
 */
import cliProgress from 'cli-progress';
import type { Logger } from '../protocol/log.ts';

export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export function createProgress(label: string, total: number, log: Logger, opts: { enabled?: boolean } = {}): Progress {
  const start = Date.now();
  if (process.stderr.isTTY && opts.enabled !== false) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {info} | {rate}/s | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, barsize: 24 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { info: '', rate: '0' });
    return {
      update(done, fields = {}) {
        const rate = (done / Math.max((Date.now() - start) / 1000, 1e-3)).toFixed(2);
        bar.update(done, { info: Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' '), rate });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, fields = {}) {
      const now = Date.now();
      if (now - last < 10_000 && done < total) return;
      last = now;
      const elapsed = (now - start) / 1000;
      const eta = done > 0 ? Math.round((elapsed / done) * (total - done)) : null;
      log.info(`${label} ${done}/${total}`, { ...fields, elapsed_s: Math.round(elapsed), eta_s: eta });
    },
    stop() {},
  };
}
