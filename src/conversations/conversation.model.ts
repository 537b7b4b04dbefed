import { Schema, type Connection, type Model } from 'mongoose';

/**
 * A user's direct-conversation partners: `with.<otherUserId> = true`. One document per user,
 * read with a single `_id` lookup to list conversations (FerretDB 1.x would scan for any other
 * query shape).
 */
export interface InboxDoc {
  _id: string;
  with: Record<string, boolean>;
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

const inboxSchema = new Schema<InboxDoc>(
  { _id: { type: String, required: true }, with: { type: Schema.Types.Mixed, default: {} } },
  { collection: 'inboxes', versionKey: false, minimize: false },
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

export type InboxModel = Model<InboxDoc>;
export type ReadMarkerModel = Model<ReadMarkerDoc>;

export function inboxModel(connection: Connection): InboxModel {
  return connection.models.Inbox ?? connection.model<InboxDoc>('Inbox', inboxSchema);
}

export function readMarkerModel(connection: Connection): ReadMarkerModel {
  return connection.models.ReadMarker ?? connection.model<ReadMarkerDoc>('ReadMarker', readMarkerSchema);
}
