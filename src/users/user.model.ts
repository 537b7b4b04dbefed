import { Schema, Types, type Connection, type Model } from 'mongoose';

/** A stored anonymous identity. */
export interface UserDoc {
  _id: Types.ObjectId;
  /** faker-made, unique (unique index). */
  username: string;
  /** Seed of the generated avatar served at /avatars/<seed>.svg. */
  avatarSeed: string;
  createdAt: Date;
  /** Presence, kept here so it survives restarts and is shared by instances. */
  online: boolean;
  lastSeenAt?: Date | null;
}

const userSchema = new Schema<UserDoc>(
  {
    username: { type: String, required: true },
    avatarSeed: { type: String, required: true },
    createdAt: { type: Date, required: true },
    online: { type: Boolean, required: true, default: false },
    lastSeenAt: { type: Date, default: null },
  },
  { collection: 'users', versionKey: false },
);
userSchema.index({ username: 1 }, { unique: true });

export type UserModel = Model<UserDoc>;

export function userModel(connection: Connection): UserModel {
  return (connection.models.User as UserModel | undefined) ?? connection.model<UserDoc>('User', userSchema);
}
