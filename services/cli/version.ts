/** advclip's version: package.json's, as `--version` prints it and a worker reports it. */
import { readFileSync } from 'node:fs';

export const packageVersion = (): string => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
};
