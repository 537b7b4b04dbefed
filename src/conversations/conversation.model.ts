import { Schema, type Connection, type Model } from 'mongoose';

/**
 * A user's direct-conversation partners, as an append-only list: entry n of user u has
 * `_id` `<u>:<n zero-padded>`, n = 1, 2, 3, ... without gaps, claimed by the insert like message
 * sequence numbers. Append-only because FerretDB 1.x applies concurrent updates of one document
 * without isolation (two instances adding partners to one inbox document lost one), and `_id`
 * keyed so listing is index-backed there (point lookups) and on MongoDB (a range).
 */
export interface InboxEntryDoc {
  _id: string;
  owner: string;
  with: string;
  at: Date;
}

/** Marks that `<owner>:<other>` has an inbox entry, so it is appended once (usually). */
export interface InboxPairDoc {
  _id: string;
}

/** How far a reader has read a direct conversation. `_id` is `<readerId>:<conversation>`. */
export interface ReadMarkerDoc {
  _id: string;
  /** Highest sequence number marked read. */
  seq: number;
  /** The other user's message count at `seq` (MessageDoc.counts), for unreadCount. */
  count: number;
  at: Date;
}

const inboxEntrySchema = new Schema<InboxEntryDoc>(
  {
    _id: { type: String, required: true },
    owner: { type: String, required: true },
    with: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'inbox_entries', versionKey: false },
);

const inboxPairSchema = new Schema<InboxPairDoc>(
  { _id: { type: String, required: true } },
  { collection: 'inbox_pairs', versionKey: false },
);

const readMarkerSchema = new Schema<ReadMarkerDoc>(
  {
    _id: { type: String, required: true },
    seq: { type: Number, required: true },
    count: { type: Number, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'read_markers', versionKey: false },
);

export type InboxEntryModel = Model<InboxEntryDoc>;
export type InboxPairModel = Model<InboxPairDoc>;
export type ReadMarkerModel = Model<ReadMarkerDoc>;

export function inboxEntryModel(connection: Connection): InboxEntryModel {
  return (
    (connection.models.InboxEntry as Model<InboxEntryDoc> | undefined) ??
    connection.model<InboxEntryDoc>('InboxEntry', inboxEntrySchema)
  );
}

export function inboxPairModel(connection: Connection): InboxPairModel {
  return (
    (connection.models.InboxPair as Model<InboxPairDoc> | undefined) ??
    connection.model<InboxPairDoc>('InboxPair', inboxPairSchema)
  );
}

export function readMarkerModel(connection: Connection): ReadMarkerModel {
  return (
    (connection.models.ReadMarker as Model<ReadMarkerDoc> | undefined) ??
    connection.model<ReadMarkerDoc>('ReadMarker', readMarkerSchema)
  );
}
