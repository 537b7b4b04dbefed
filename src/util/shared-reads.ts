/**
 * Concurrent reads of the same key share one: the first caller's read answers every caller
 * that asks while it is in flight. A reconnect storm after a restart asks for the same session,
 * user or messages thousands of times at once, each of which would otherwise be its own
 * database command.
 *
 * `detach(key)` is for a write of what the key names: callers after it start a new read, and
 * the detached read's answer is not handed to `fresh` (it may predate the write).
 */
export class SharedReads<K, V> {
  private readonly reads = new Map<K, Promise<V>>();

  /**
   * The read in flight for `key`, else `read()`'s. `fresh` gets its answer once, before any
   * caller's continuation, unless the key was detached meanwhile (to fill a cache).
   */
  get(key: K, read: () => Promise<V>, fresh?: (value: V) => void): Promise<V> {
    const shared = this.reads.get(key);
    if (shared) return shared;
    const started = read();
    this.reads.set(key, started);
    started.then(
      (value) => {
        if (this.reads.get(key) !== started) return;
        this.reads.delete(key);
        fresh?.(value);
      },
      () => {
        if (this.reads.get(key) === started) this.reads.delete(key);
      },
    );
    return started;
  }

  detach(key: K): void {
    this.reads.delete(key);
  }
}
