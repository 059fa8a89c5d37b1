/**
 * The follower's wake-up: a generation counter bumped by the source's change hint (chokidar), waited on
 * with a timeout that is the polling fallback. Reading the generation before a pass and waiting for it to
 * move after the pass loses no hint that arrived during the pass.
 */
export class Wakeup {
  #generation = 0;
  readonly #waiters = new Set<() => void>();

  get generation(): number {
    return this.#generation;
  }

  notify(): void {
    this.#generation += 1;
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves when the generation moves past `since`, after `timeoutMs`, or when `signal` aborts. */
  wait(since: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#generation !== since || signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
