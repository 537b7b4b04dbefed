/**
 * Collections of the message lifecycle. Every one is written by insert (a claim: the unique
 * `_id` decides between concurrent writers) and read by `_id`, because FerretDB 1.x has no
 * atomic find-and-modify and serves only `_id` equality from an index.
 */
import { Schema, type Connection, type Model } from 'mongoose';

/** One user's reaction: `_id` is `<messageId>|<userId>|<emoji>`, so reacting twice is a duplicate key. */
export interface ReactionDoc {
  _id: string;
  message: string;
  user: string;
  emoji: string;
  at: Date;
}

/**
 * One change of a message (edit, deletion, reaction change), numbered per conversation:
 * `_id` is `<conversation>|u|<zero-padded n>`, n = 1, 2, 3, ... claimed by insert.
 * Holds no content: readers load the message's current state.
 */
export interface UpdateDoc {
  _id: string;
  conversation: string;
  n: number;
  message: string;
  at: Date;
}

/** A conversation's settings: `_id` is the conversation key. */
export interface ConversationSettingDoc {
  _id: string;
  /** Disappearing messages: null or absent for none. */
  messageTtlSeconds: number | null;
  by: string;
  at: Date;
}

/**
 * A stored message that will expire: `_id` is the message's id, `at` its expiry. Written before
 * the message itself, so no message with a timer can exist untracked; removed once purged.
 * The purge job reads this small collection instead of scanning every message: on FerretDB a
 * query on any field but `_id` reads the whole collection, which at 1M messages takes minutes
 * and holds SQLite's WAL open all that time (every other read slows down with it).
 */
export interface MessageExpiryDoc {
  _id: string;
  at: Date;
}

const expirySchema = new Schema<MessageExpiryDoc>(
  {
    _id: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'message_expiries', versionKey: false },
);
// The purge's `at <= now` (MongoDB uses it; FerretDB scans this small collection).
expirySchema.index({ at: 1 });

const reactionSchema = new Schema<ReactionDoc>(
  {
    _id: { type: String, required: true },
    message: { type: String, required: true },
    user: { type: String, required: true },
    emoji: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'reactions', versionKey: false },
);
// Recounting a message's reactions and erasing a user's (MongoDB uses these; FerretDB scans).
reactionSchema.index({ message: 1 });
reactionSchema.index({ user: 1 });

const updateSchema = new Schema<UpdateDoc>(
  {
    _id: { type: String, required: true },
    conversation: { type: String, required: true },
    n: { type: Number, required: true },
    message: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'message_updates', versionKey: false },
);

const settingSchema = new Schema<ConversationSettingDoc>(
  {
    _id: { type: String, required: true },
    messageTtlSeconds: { type: Number, default: null },
    by: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'conversation_settings', versionKey: false },
);

export type ReactionModel = Model<ReactionDoc>;
export type MessageExpiryModel = Model<MessageExpiryDoc>;
export type UpdateModel = Model<UpdateDoc>;
export type ConversationSettingModel = Model<ConversationSettingDoc>;

function model<T>(connection: Connection, name: string, schema: Schema<T>): Model<T> {
  return (connection.models[name] as Model<T> | undefined) ?? connection.model<T>(name, schema);
}

export const reactionModel = (c: Connection) => model(c, 'Reaction', reactionSchema);
export const messageExpiryModel = (c: Connection) => model(c, 'MessageExpiry', expirySchema);
export const updateModel = (c: Connection) => model(c, 'MessageUpdate', updateSchema);
export const conversationSettingModel = (c: Connection) => model(c, 'ConversationSetting', settingSchema);
