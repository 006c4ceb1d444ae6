/**
 * The runs a worker of a sweep holds (advclip sweep): each Task names its
 * run, and the first task of a run the worker does not hold loads it (the
 * coordinator's GetRun, then the run's setup and adapter holder). At most
 * `maxRuns` are held: the least recently used one beyond that is disposed
 * (its model, data and adapter tensors), so a long sweep does not grow a
 * worker's memory. A worker computes one task at a time, so the run it
 * evicts is never computing; a later task of it loads it again.
 */
/** Runs a worker holds at once by default: a sweep's concurrent runs, with room for one finishing. */
export const DEFAULT_MAX_RUNS = 4;

/** Runs by id, least recently used first; `release` frees an evicted one. */
export class RunCache<T> {
  /** in use order: the first is the least recently used */
  readonly #held = new Map<string, Promise<T>>();
  readonly #load: (runId: string) => Promise<T>;
  readonly #maxRuns: number;

  readonly #release: (run: T) => void;

  constructor(load: (runId: string) => Promise<T>, release: (run: T) => void, maxRuns = DEFAULT_MAX_RUNS) {
    this.#load = load;
    this.#release = release;
    this.#maxRuns = Math.max(1, maxRuns);
  }

  /** Run ids held (or loading), least recently used first. */
  get held(): string[] {
    return [...this.#held.keys()];
  }

  /** The run, loaded on first use; a failed load is forgotten, so the next task tries again. */
  get(runId: string): Promise<T> {
    let run = this.#held.get(runId);
    if (run) {
      this.#held.delete(runId);
      this.#held.set(runId, run);
      return run;
    }
    run = this.#load(runId);
    this.#held.set(runId, run);
    run.catch(() => {
      if (this.#held.get(runId) === run) this.#held.delete(runId);
    });
    this.#evict();
    return run;
  }

  /** The run if held and loaded (an adapter announcement for a run not held is ignored). */
  peek(runId: string): Promise<T> | undefined {
    return this.#held.get(runId);
  }

  dispose(): void {
    for (const run of this.#held.values()) void run.then(this.#release, () => undefined);
    this.#held.clear();
  }

  #evict(): void {
    while (this.#held.size > this.#maxRuns) {
      const [oldest, run] = this.#held.entries().next().value!;
      this.#held.delete(oldest);
      void run.then(this.#release, () => undefined);
    }
  }
}
