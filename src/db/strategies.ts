/**
 * The two storage strategies (see strategy.ts for what each assumes about the server).
 */
import type { Model } from 'mongoose';
import { gallopHead } from './sequence';
import {
  isDuplicateKey,
  seqId,
  type InsertOutcome,
  type SeqKeys,
  type StorageStrategy,
  type StrategyName,
} from './strategy';

type AnyModel = Model<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * One document by `_id`, as the `find` command itself: what a lean mongoose findOne returns
 * (`_id` is passed as stored, string or ObjectId, so there is nothing to cast), without the
 * query object, casting and cursor around it. These lookups are most of the reads (every
 * FerretDB read is one), and a burst of first messages sends hundreds at once. It goes to the
 * primary (a command's default read preference), which a lookup that must see the latest
 * write (a head, a marker) wants anyway.
 */
async function findOneById<T>(model: Model<T>, id: unknown, projection?: Record<string, 1>): Promise<T | null> {
  const res = (await model.db.db!.command({
    find: model.collection.collectionName,
    filter: { _id: id },
    ...(projection ? { projection } : {}),
    limit: 1,
    singleBatch: true,
  })) as { cursor: { firstBatch: T[] } };
  return res.cursor.firstBatch[0] ?? null;
}

function findById<T>(model: Model<T>, id: unknown): Promise<T | null> {
  return findOneById(model, id);
}

async function exists<T>(model: Model<T>, id: unknown): Promise<boolean> {
  return (await findOneById(model, id, { _id: 1 })) !== null;
}

async function insertUnique<T>(model: Model<T>, doc: T): Promise<boolean> {
  try {
    await model.collection.insertOne(doc as never);
    return true;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}

async function insertMany<T>(model: Model<T>, docs: readonly T[], ordered: boolean): Promise<InsertOutcome[]> {
  if (docs.length === 0) return [];
  // The insert command itself rather than Collection.insertMany: the driver's bulk API wraps a
  // lost connection in a MongoBulkWriteError that hides it (the caller must see
  // SERVICE_UNAVAILABLE then), while the command answers per document or throws the real error.
  const res = (await model.db.db!.command({
    insert: model.collection.collectionName,
    documents: docs as unknown[],
    ordered,
  })) as { writeErrors?: Array<{ index: number; code?: number; errmsg?: string }>; writeConcernError?: unknown };
  if (res.writeConcernError) {
    const err = new Error(`write concern error: ${JSON.stringify(res.writeConcernError)}`);
    return docs.map(() => err);
  }
  const out: InsertOutcome[] = docs.map(() => true);
  const list = res.writeErrors ?? [];
  for (const we of list) {
    out[we.index] = we.code === 11000 ? 'duplicate' : new Error(we.errmsg ?? `write error ${we.code}`);
  }
  if (ordered && list.length > 0) {
    const first = Math.min(...list.map((we) => we.index));
    for (let i = first + 1; i < out.length; i++) out[i] = 'skipped';
  }
  return out;
}

/** Integer range lo..hi (inclusive), ascending or descending. */
function numbers(lo: number, hi: number, descending: boolean): number[] {
  const out: number[] = [];
  if (descending) for (let n = hi; n >= lo; n--) out.push(n);
  else for (let n = lo; n <= hi; n++) out.push(n);
  return out;
}

const numberOf = (keys: SeqKeys, id: string): number => Number(id.slice(keys.prefix.length));

/** MongoDB's error code for a feature the server lacks (FerretDB's answer to TTL indexes). */
const NOT_IMPLEMENTED = 238;

function periodicPurge(everyMs: number, purge: () => Promise<unknown>): () => void {
  const timer = setInterval(() => void purge().catch(() => undefined), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Everything through the primary index: `$in`, `_id` ranges with sort and limit, TTL indexes. */
export const mongodbStrategy: StorageStrategy = {
  name: 'mongodb',
  findById,
  exists,
  insertUnique,
  insertMany,
  isDuplicateKey,

  async findByIds<T>(model: Model<T>, ids: readonly unknown[]): Promise<T[]> {
    if (ids.length === 0) return [];
    if (ids.length === 1) {
      const one = await findById(model, ids[0]);
      return one ? [one] : [];
    }
    return (await (model as AnyModel)
      .find({ _id: { $in: ids } })
      .lean()
      .exec()) as T[];
  },

  async head<T>(model: Model<T>, keys: SeqKeys): Promise<number> {
    const last = (await (model as AnyModel)
      .findOne({ _id: { $gte: seqId(keys, 0), $lte: seqId(keys, 10 ** keys.width - 1) } }, { _id: 1 })
      .sort({ _id: -1 })
      .lean()
      .exec()) as { _id: string } | null;
    return last ? numberOf(keys, last._id) : 0;
  },

  async range<T>(model: Model<T>, keys: SeqKeys, from: number, to: number, limit: number, newest = false) {
    from = Math.max(from, 1);
    to = Math.min(to, 10 ** keys.width - 1);
    if (limit <= 0 || to < from) return [];
    const docs = (await (model as AnyModel)
      .find({ _id: { $gte: seqId(keys, from), $lte: seqId(keys, to) } })
      .sort({ _id: newest ? -1 : 1 })
      .limit(limit)
      .lean()
      .exec()) as T[];
    return newest ? docs.reverse() : docs;
  },

  guardedFilter: (id, guard) => ({ ...guard, _id: id }),

  async expireBy(collection, field, purgeEveryMs, purge) {
    try {
      await collection.createIndex({ [field]: 1 }, { expireAfterSeconds: 0 });
      return () => undefined;
    } catch (err) {
      // A server without TTL indexes (this strategy forced on FerretDB, as CI runs it).
      if ((err as { code?: number }).code !== NOT_IMPLEMENTED) throw err;
      return periodicPurge(purgeEveryMs, purge);
    }
  },
};

/**
 * Exact `_id` lookups only. A range of a gap-free sequence is the ids it must contain, read
 * concurrently; a missing id is tolerated (the page is filled from further along) so a hole
 * could never wedge a reader.
 */
export const ferretdbStrategy: StorageStrategy = {
  name: 'ferretdb',
  findById,
  exists,
  insertUnique,
  insertMany,
  isDuplicateKey,

  async findByIds<T>(model: Model<T>, ids: readonly unknown[]): Promise<T[]> {
    // `{ _id: { $in } }` scans the whole collection on FerretDB 1.x.
    const found = await Promise.all(ids.map((id) => findById(model, id)));
    return found.filter((d): d is NonNullable<typeof d> => d != null);
  },

  head<T>(model: Model<T>, keys: SeqKeys, known: number): Promise<number> {
    // One lookup when nothing changed since `known`, O(log n) the first time.
    return gallopHead(known, (n) => exists(model, seqId(keys, n)));
  },

  async range<T>(model: Model<T>, keys: SeqKeys, from: number, to: number, limit: number, newest = false) {
    from = Math.max(from, 1);
    if (limit <= 0 || to < from) return [];
    const out: T[] = [];
    let lo = from;
    let hi = to;
    while (out.length < limit && lo <= hi) {
      const want = limit - out.length;
      const batch = newest
        ? numbers(Math.max(lo, hi - want + 1), hi, true)
        : numbers(lo, Math.min(hi, lo + want - 1), false);
      out.push(
        ...(await ferretdbStrategy.findByIds(
          model,
          batch.map((n) => seqId(keys, n)),
        )),
      );
      if (newest) hi = batch[batch.length - 1] - 1;
      else lo = batch[batch.length - 1] + 1;
    }
    const n = (d: T) => numberOf(keys, (d as { _id: string })._id);
    out.sort((a, b) => n(a) - n(b));
    return newest ? out.slice(-limit) : out.slice(0, limit);
  },

  guardedFilter: (id) => ({ _id: id }),

  expireBy: (_collection, _field, purgeEveryMs, purge) => Promise.resolve(periodicPurge(purgeEveryMs, purge)),
};

export function strategyFor(name: StrategyName): StorageStrategy {
  return name === 'mongodb' ? mongodbStrategy : ferretdbStrategy;
}
