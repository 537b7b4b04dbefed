/**
 * How Anonymo reads and writes MongoDB-compatible storage: one strategy object per
 * connection, chosen at connect time (DB_STRATEGY, default: the detected server). Domain code
 * calls these operations and never asks which server it talks to.
 *
 * Two implementations:
 * - `mongodb` (MongoDB, Atlas): `$in` lookups and `_id` range scans with sort and limit, all
 *   served by the primary index; TTL indexes expire documents; conditional updates are atomic.
 * - `ferretdb` (FerretDB 1.x on SQLite): only an exact `{ _id: value }` filter is index-backed
 *   (with the patch in tools/ferretdb), so every read is point lookups by `_id`; there are no
 *   TTL indexes (expiry is a periodic delete) and concurrent updates are not isolated.
 *
 * The MongoDB strategy's queries are valid on FerretDB too, just slower there: CI runs the
 * integration suite a second time with `DB_STRATEGY=mongodb` so that path is executed.
 */
import type { Model } from 'mongoose';

/** The part of a driver collection that expireBy needs. */
export interface IndexableCollection {
  createIndex(spec: Record<string, 1>, options: { expireAfterSeconds: number }): Promise<unknown>;
}

export type InsertOutcome = true | 'duplicate' | 'skipped' | Error;

export type StrategyName = 'ferretdb' | 'mongodb';

/**
 * A gap-free numbered family of documents whose `_id` is `prefix` + the number zero-padded
 * to `width` digits (messages of a conversation, entries of an inbox): ids sort by number,
 * so a range of numbers is an `_id` range, and the ids of a range are known in advance.
 */
export interface SeqKeys {
  prefix: string;
  width: number;
}

export const seqId = (keys: SeqKeys, n: number): string => `${keys.prefix}${String(n).padStart(keys.width, '0')}`;

export interface StorageStrategy {
  readonly name: StrategyName;
  /** One document by `_id`. */
  findById<T>(model: Model<T>, id: unknown): Promise<T | null>;
  /** Documents by `_id` (missing ones left out, any order), in one round trip where that is index-backed. */
  findByIds<T>(model: Model<T>, ids: readonly unknown[]): Promise<T[]>;
  /** Whether a document with this `_id` exists. */
  exists<T>(model: Model<T>, id: unknown): Promise<boolean>;
  /**
   * The newest number of a gap-free sequence (0 when there is none). `known` is a number known
   * to exist (0: none): the FerretDB strategy gallops forward from it with `_id` lookups.
   */
  head<T>(model: Model<T>, keys: SeqKeys, known: number): Promise<number>;
  /** Up to `limit` documents numbered `from..to`, oldest first; `newest` takes the newest `limit`. */
  range<T>(model: Model<T>, keys: SeqKeys, from: number, to: number, limit: number, newest?: boolean): Promise<T[]>;
  /** Inserts; false (nothing written) when a unique key is taken. Other errors reject. */
  insertUnique<T>(model: Model<T>, doc: T): Promise<boolean>;
  /**
   * Inserts many documents in one command; per document, `true` (stored), `'duplicate'` (a
   * unique key is taken), `'skipped'` (ordered: not attempted after an earlier failure) or the
   * error that kept it out.
   */
  insertMany<T>(model: Model<T>, docs: readonly T[], ordered: boolean): Promise<InsertOutcome[]>;
  /** Whether an error is a unique-key violation (E11000). */
  isDuplicateKey(err: unknown): boolean;
  /**
   * The filter of an update of `_id` that should apply only while `guard` holds. MongoDB checks
   * the guard atomically; on FerretDB any filter but a bare `_id` scans the collection, so
   * callers there serialise the updates themselves and the guard is dropped.
   */
  guardedFilter(id: unknown, guard: Record<string, unknown>): Record<string, unknown>;
  /**
   * Deletes documents once `field` (a Date) has passed: a TTL index where the server has one,
   * else a periodic delete. Returns a function that stops the periodic work.
   */
  expireBy(
    collection: IndexableCollection,
    field: string,
    purgeEveryMs: number,
    purge: () => Promise<unknown>,
  ): Promise<() => void>;
}

/** A MongoDB duplicate-key error, as thrown by the driver (also inside bulk-write errors). */
export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 11000;
}
