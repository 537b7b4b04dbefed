/**
 * Group commit of independent inserts into one collection: the documents that arrive while
 * one write is in flight are stored together in the next, as one unordered `insertMany`.
 * For documents that do not depend on each other (inbox entries and pair markers of new
 * direct conversations), where a burst of first messages would otherwise be one insert
 * each, and FerretDB (SQLite) has one writer. At low load a batch is what was submitted
 * together (in one run of microtasks) written at once, so batching adds no wait.
 */
import type { Model } from 'mongoose';
import type { StorageStrategy } from './strategy';

interface Pending<T> {
  doc: T;
  resolve(stored: boolean): void;
  reject(err: unknown): void;
}

export class InsertBatcher<T> {
  private queue: Array<Pending<T>> = [];
  private writing = false;
  private scheduled = false;

  constructor(
    private readonly model: Model<T>,
    private readonly strategy: StorageStrategy,
    private readonly maxBatch = 500,
    /**
     * How long a document waits for others before its write starts, for writes nobody waits
     * for: they gather into fewer inserts and leave the database (SQLite has one writer) to
     * the writes that an answer waits for. Default 0: at once.
     */
    private readonly lingerMs = 0,
  ) {}

  /**
   * Inserts `doc`; resolves once the database acknowledged the write holding it: true when
   * stored, false when a unique key is taken (nothing written, as insertUnique).
   */
  insert(doc: T): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ doc, resolve, reject });
      // At the end of the current run of microtasks: documents submitted together (the two
      // inbox entries of one conversation) share a write even when nothing else is queued.
      if (!this.scheduled) {
        this.scheduled = true;
        const start = () => {
          this.scheduled = false;
          this.kick();
        };
        if (this.lingerMs > 0) setTimeout(start, this.lingerMs).unref();
        else queueMicrotask(start);
      }
    });
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const batch = this.queue.splice(0, this.maxBatch);
    this.strategy
      .insertMany(
        this.model,
        batch.map((p) => p.doc),
        false,
      )
      .then(
        (results) =>
          batch.forEach((p, i) => {
            const r = results[i];
            if (r === true) p.resolve(true);
            else if (r === 'duplicate') p.resolve(false);
            // Unordered: nothing is skipped, so anything else is that document's own error.
            else p.reject(r === 'skipped' ? new Error('insert skipped') : r);
          }),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        this.writing = false;
        this.kick();
      });
  }
}
