import { Schema, type Connection, type Model } from 'mongoose';

/** A stored message. `_id` is `<conversation>:<zero-padded seq>` (see conversation.ts). */
export interface MessageDoc {
  _id: string;
  conversation: string;
  /** Position in the conversation: 1, 2, 3, ... without gaps (see MessageService.send). */
  seq: number;
  text: string;
  /** User ids as hex strings. */
  sender: string;
  recipient: string | null;
  clientId: string | null;
  /** `<sender>:<clientId>`, only when a clientId was given: the idempotency key. */
  dedupeKey?: string;
  createdAt: Date;
  readAt: Date | null;
  /** Direct messages: how many messages each participant had sent, up to and including this one. */
  counts?: Record<string, number>;
  // Lifecycle (src/lifecycle): edits, tombstones, replies, reactions, expiry.
  /** Last edit. */
  editedAt?: Date | null;
  /** Deleted: a tombstone (text "", no reactions, no replyTo). */
  deletedAt?: Date | null;
  /** The id of the message this one answers (same conversation). */
  replyTo?: string | null;
  /** Reaction counts by emoji, in order of first use (the claims are in the reactions collection). */
  reactions?: Array<{ emoji: string; count: number }>;
  /** Disappearing messages and RETENTION_DAYS: hidden from then on, purged within a minute. */
  expiresAt?: Date | null;
  /** Set by the purge: what is left is only the position (conversation, seq, counts), no content. */
  purgedAt?: Date | null;
  // Abuse control (src/moderation): both make the message visible to its sender only.
  /** Sent while shadow-banned. */
  shadow?: boolean;
  /** Hidden after REPORT_HIDE_THRESHOLD reports, until a moderator clears or deletes it. */
  hiddenAt?: Date | null;
}

const messageSchema = new Schema<MessageDoc>(
  {
    _id: { type: String, required: true },
    conversation: { type: String, required: true },
    seq: { type: Number, required: true },
    text: { type: String, required: true },
    sender: { type: String, required: true },
    recipient: { type: String, default: null },
    clientId: { type: String, default: null },
    dedupeKey: { type: String },
    createdAt: { type: Date, required: true },
    readAt: { type: Date, default: null },
    counts: { type: Schema.Types.Mixed },
    editedAt: { type: Date },
    deletedAt: { type: Date },
    replyTo: { type: String },
    reactions: { type: Schema.Types.Mixed },
    expiresAt: { type: Date },
    purgedAt: { type: Date },
    shadow: { type: Boolean },
    hiddenAt: { type: Date },
  },
  { collection: 'messages', versionKey: false },
);
// The primary key serves the two reads that matter (newest page; a page before/after a
// cursor): both are `_id` ranges. This unique index makes a repeated clientId from the same
// sender fail the insert itself, so a retry can never store a second copy. Sparse, because
// FerretDB 1.x has no partial indexes and most messages carry no clientId.
messageSchema.index({ dedupeKey: 1 }, { unique: true, sparse: true });
// The purge job's query (MongoDB uses it; FerretDB 1.x scans, once per purge run). Sparse:
// most messages never expire.
messageSchema.index({ expiresAt: 1 }, { sparse: true });

export type MessageModel = Model<MessageDoc>;

export function messageModel(connection: Connection): MessageModel {
  return (
    (connection.models.Message as Model<MessageDoc> | undefined) ??
    connection.model<MessageDoc>('Message', messageSchema)
  );
}
