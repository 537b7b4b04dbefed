/**
 * Runs jobs one at a time per key, in arrival order; different keys run concurrently.
 * Used where two concurrent writes of the same thing would race (FerretDB 1.x applies
 * updates as read-modify-write without isolation).
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(job, job);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves when every job queued so far has settled, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    const pending = [...this.tails.values()];
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  get size(): number {
    return this.tails.size;
  }
}
