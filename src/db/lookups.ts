import type { Model } from 'mongoose';
import type { DatabaseKind } from './database';

/**
 * Loads documents by `_id`, in one round trip where that is index-backed.
 *
 * FerretDB 1.x (SQLite) uses an index only for a filter that is exactly `{ _id: value }`
 * (with the patch in tools/ferretdb); `{ _id: { $in } }` scans the whole collection. So
 * there we issue one point lookup per id, concurrently; on MongoDB a single `$in`.
 */
export async function findByIds<T extends { _id: unknown }>(
  model: Model<T>,
  ids: readonly unknown[],
  kind: DatabaseKind,
): Promise<T[]> {
  if (ids.length === 0) return [];
  if (kind === 'mongodb' || ids.length === 1) {
    return await model
      .find({ _id: ids.length === 1 ? ids[0] : { $in: ids } } as never)
      .lean()
      .exec();
  }
  const found = await Promise.all(
    ids.map((id) =>
      model
        .findOne({ _id: id } as never)
        .lean()
        .exec(),
    ),
  );
  return found.filter((d): d is NonNullable<typeof d> => d != null);
}

/** Whether a document with this `_id` exists (an index-backed lookup on FerretDB too). */
export async function existsById<T>(model: Model<T>, id: unknown): Promise<boolean> {
  return (
    (await model
      .findOne({ _id: id } as never, { _id: 1 })
      .lean()
      .exec()) !== null
  );
}
