import { Schema, type Connection, type Model } from 'mongoose';

/** A room. Immutable after creation except `activeAt` (the newest message, roughly). */
export interface RoomDoc {
  /** 16 random URL-safe characters: not derivable from the slug or the creation time. */
  _id: string;
  slug: string;
  title: string;
  public: boolean;
  createdBy: string;
  createdAt: Date;
  messageTtlSeconds: number | null;
  /** When the room last had a message (creation at first): `rooms` lists the most active first. */
  activeAt: Date;
}

/** Claims a slug: `_id` is the slug, so two rooms can never take the same one (unique `_id`). */
export interface RoomSlugDoc {
  _id: string;
  room: string;
}

/** A membership, claimed by insert: `_id` is `<roomId>:<userId>`, so joining twice stores one. */
export interface RoomMemberDoc {
  _id: string;
  room: string;
  user: string;
  joinedAt: Date;
}

const roomSchema = new Schema<RoomDoc>(
  {
    _id: { type: String, required: true },
    slug: { type: String, required: true },
    title: { type: String, required: true },
    public: { type: Boolean, required: true },
    createdBy: { type: String, required: true },
    createdAt: { type: Date, required: true },
    messageTtlSeconds: { type: Number, default: null },
    activeAt: { type: Date, required: true },
  },
  { collection: 'rooms', versionKey: false },
);
// Used by MongoDB for `rooms`; FerretDB 1.x scans (see docs/ROOMS.md).
roomSchema.index({ public: 1, activeAt: -1, _id: 1 });

const roomSlugSchema = new Schema<RoomSlugDoc>(
  { _id: { type: String, required: true }, room: { type: String, required: true } },
  { collection: 'room_slugs', versionKey: false },
);

const roomMemberSchema = new Schema<RoomMemberDoc>(
  {
    _id: { type: String, required: true },
    room: { type: String, required: true },
    user: { type: String, required: true },
    joinedAt: { type: Date, required: true },
  },
  { collection: 'room_members', versionKey: false },
);
roomMemberSchema.index({ room: 1 });
roomMemberSchema.index({ user: 1 });

export type RoomModel = Model<RoomDoc>;
export type RoomSlugModel = Model<RoomSlugDoc>;
export type RoomMemberModel = Model<RoomMemberDoc>;

export function roomModel(connection: Connection): RoomModel {
  return (connection.models.Room as RoomModel | undefined) ?? connection.model<RoomDoc>('Room', roomSchema);
}

export function roomSlugModel(connection: Connection): RoomSlugModel {
  return (
    (connection.models.RoomSlug as RoomSlugModel | undefined) ??
    connection.model<RoomSlugDoc>('RoomSlug', roomSlugSchema)
  );
}

export function roomMemberModel(connection: Connection): RoomMemberModel {
  return (
    (connection.models.RoomMember as RoomMemberModel | undefined) ??
    connection.model<RoomMemberDoc>('RoomMember', roomMemberSchema)
  );
}
