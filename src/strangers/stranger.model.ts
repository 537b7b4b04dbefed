import { Schema, type Connection, type Model } from 'mongoose';

/**
 * Two users whose stranger chat ended: `_id` is `<smaller id>:<larger id>`. Permanent: they
 * are never paired again and may not message each other (read by `_id` only).
 */
export interface StrangerEndedDoc {
  _id: string;
  at: Date;
}

/** A user waiting for a stranger (without Redis): `_id` is the user's id. The queue is small and scanned. */
export interface StrangerQueueDoc {
  _id: string;
  interests: string[];
  /** When the user started waiting (ms): after STRANGER_ANY_AFTER_MS anyone is eligible. */
  since: number;
  /**
   * Until when (ms) the entry is held: an instance where the user has a connection (or queued)
   * renews it; past it, the entry is nobody's (a crashed instance's) and any instance removes it.
   */
  leaseUntil?: number;
}

/**
 * A user's current pairing (without Redis): `_id` is the user's id, so a user is in at most
 * one pairing; a pairing is two of these, claimed by insert (see DbStrangerMatcher).
 */
export interface StrangerPairDoc {
  _id: string;
  with: string;
  shared: string[];
  at: Date;
}

const endedSchema = new Schema<StrangerEndedDoc>(
  { _id: { type: String, required: true }, at: { type: Date, required: true } },
  { collection: 'stranger_ended', versionKey: false },
);

const queueSchema = new Schema<StrangerQueueDoc>(
  {
    _id: { type: String, required: true },
    interests: { type: [String], required: true },
    since: { type: Number, required: true },
    leaseUntil: { type: Number },
  },
  { collection: 'stranger_queue', versionKey: false },
);

const pairSchema = new Schema<StrangerPairDoc>(
  {
    _id: { type: String, required: true },
    with: { type: String, required: true },
    shared: { type: [String], required: true },
    at: { type: Date, required: true },
  },
  { collection: 'stranger_pairs', versionKey: false },
);

export type StrangerEndedModel = Model<StrangerEndedDoc>;
export type StrangerQueueModel = Model<StrangerQueueDoc>;
export type StrangerPairModel = Model<StrangerPairDoc>;

export function strangerEndedModel(c: Connection): StrangerEndedModel {
  return (
    (c.models.StrangerEnded as StrangerEndedModel | undefined) ??
    c.model<StrangerEndedDoc>('StrangerEnded', endedSchema)
  );
}

export function strangerQueueModel(c: Connection): StrangerQueueModel {
  return (
    (c.models.StrangerQueue as StrangerQueueModel | undefined) ??
    c.model<StrangerQueueDoc>('StrangerQueue', queueSchema)
  );
}

export function strangerPairModel(c: Connection): StrangerPairModel {
  return (
    (c.models.StrangerPair as StrangerPairModel | undefined) ?? c.model<StrangerPairDoc>('StrangerPair', pairSchema)
  );
}
