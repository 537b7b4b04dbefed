import { Schema, type Connection, type Model } from 'mongoose';
import type { SeqKeys } from '../db/strategy';

/**
 * One block or unblock by a user, as an append-only log: entry n of blocker b has `_id`
 * `<b>#<n zero-padded>`, n = 1, 2, 3, ... without gaps, claimed by the insert. A user's blocked
 * set is the log replayed in order. Append-only and `_id`-keyed because FerretDB 1.x has no
 * isolation for concurrent updates of one document and uses an index only for `_id`
 * equality: reading a user's blocks is point lookups, and a user who blocks no one costs one.
 */
export interface BlockLogDoc {
  _id: string;
  blocker: string;
  blocked: string;
  /** true: block; false: unblock. */
  on: boolean;
  at: Date;
}

const blockLogSchema = new Schema<BlockLogDoc>(
  {
    _id: { type: String, required: true },
    blocker: { type: String, required: true },
    blocked: { type: String, required: true },
    on: { type: Boolean, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'block_log', versionKey: false },
);

export type BlockLogModel = Model<BlockLogDoc>;

/** The log of one blocker as a numbered family of `_id`s (see db/strategy.ts). */
export const blockLogKeys = (blocker: string): SeqKeys => ({ prefix: `${blocker}#`, width: 6 });

export function blockLogModel(connection: Connection): BlockLogModel {
  return (
    (connection.models.BlockLog as BlockLogModel | undefined) ??
    connection.model<BlockLogDoc>('BlockLog', blockLogSchema)
  );
}
