/**
 * Rooms: topic rooms, public (listed) or private (reached by an unguessable slug only).
 *
 * Everything that must stay exact across instances on FerretDB 1.x is claimed by insert:
 * a slug is a `room_slugs` document whose `_id` is the slug, a membership a `room_members`
 * document whose `_id` is `<room>:<user>`, and the counts (members of a room, rooms of a
 * user, rooms created by a user today) are ExactCounters (db/counter.ts), which refuse a change
 * past their bound. The rules about who may read and write a room's messages live here too,
 * handed to the messages domain as its RoomAccess.
 */
import { randomBytes } from 'node:crypto';
import { lru } from '../util/lru';
import type { ExactCounter } from '../db/counter';
import { BadUserInputError, ForbiddenError, RateLimitedError } from '../errors';
import { ROOM_ID } from '../messages/conversation';
import type { RoomAccess } from '../messages/message.service';
import type { PubSub } from '../realtime/pubsub';
import { ROOM_LEFT_TOPIC } from './room.events';
import type { RoomDoc, RoomMemberModel, RoomModel, RoomSlugModel } from './room.model';

export const MAX_TITLE_LENGTH = 80;
export const MIN_TTL_SECONDS = 30;
export const MAX_TTL_SECONDS = 2592000;
export const DEFAULT_ROOMS_PAGE = 20;
export const MAX_ROOMS_PAGE = 100;
/** A room's activity is written at most this often per instance (it orders `rooms`, nothing exact). */
const ACTIVITY_WRITE_MS = 5000;

export interface RoomLimits {
  createdPerDay: number;
  maxMembers: number;
  perUser: number;
}

export interface CreateRoomArgs {
  title: string;
  public: boolean;
  messageTtlSeconds?: number | null;
}

export interface RoomPage {
  rooms: RoomDoc[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
}

const isDuplicateKey = (err: unknown) => (err as { code?: number })?.code === 11000;
const randomId = (bytes: number) => randomBytes(bytes).toString('base64url');
const memberId = (roomId: string, userId: string) => `${roomId}:${userId}`;
const SLUG = /^[A-Za-z0-9_-]{1,64}$/;

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/g;

/** A public room's slug from its title: lower-case ASCII letters, digits and single dashes. */
export function slugify(title: string): string {
  const base = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return base || 'room';
}

function encodeRoomCursor(room: RoomDoc): string {
  return Buffer.from(`${room.activeAt.getTime()}:${room._id}`).toString('base64url');
}

function decodeRoomCursor(cursor: string): { at: Date; id: string } {
  const bad = () => new BadUserInputError('after is not a valid cursor', 'after');
  if (typeof cursor !== 'string' || cursor.length > 64 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  const m = /^(\d{1,15}):([A-Za-z0-9_-]{16})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) throw bad();
  return { at: new Date(Number(m[1])), id: m[2] };
}

export class RoomService implements RoomAccess {
  /** Rooms by id (immutable but for activeAt, which is read from the database where it matters). */
  private readonly cache = lru<string, RoomDoc>(20000);
  private readonly lastActivityWrite = lru<string, number>(50000);

  constructor(
    private readonly rooms: RoomModel,
    private readonly slugs: RoomSlugModel,
    private readonly members: RoomMemberModel,
    private readonly counter: ExactCounter,
    private readonly presence: { isOnline(userId: string): boolean },
    private readonly limits: RoomLimits,
    /** Announces members leaving private rooms (their open subscriptions end); none in unit uses. */
    private readonly pubsub?: PubSub,
  ) {}

  async get(roomId: string): Promise<RoomDoc | null> {
    const cached = this.cache.get(roomId);
    if (cached) return cached;
    const doc = await this.rooms.findOne({ _id: roomId }).lean<RoomDoc>().exec();
    if (doc) this.cache.set(roomId, doc);
    return doc;
  }

  async isMember(roomId: string, userId: string): Promise<boolean> {
    return (await this.members.exists({ _id: memberId(roomId, userId) }).exec()) !== null;
  }

  memberCount(roomId: string): Promise<number> {
    return this.counter.value(`room:${roomId}`);
  }

  /**
   * The room `roomId` as the viewer may see it. Unknown, malformed and private-without-
   * membership all answer the same BAD_USER_INPUT, so private rooms cannot be probed.
   */
  async visible(viewerId: string, roomId: unknown, field = 'room'): Promise<{ room: RoomDoc; member: boolean }> {
    const unknown = () => new BadUserInputError(`${field} is not a known room`, field);
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw unknown();
    const room = await this.get(roomId);
    if (!room) throw unknown();
    const member = await this.isMember(roomId, viewerId);
    if (!room.public && !member) throw unknown();
    return { room, member };
  }

  /** RoomAccess: anyone reads a public room, members write it; a private room is its members' only. */
  async check(viewerId: string, roomId: string, access: 'read' | 'write', field: string): Promise<void> {
    const { member } = await this.visible(viewerId, roomId, field);
    if (access === 'write' && !member) throw new ForbiddenError('Join the room to write in it');
  }

  /** RoomAccess: a message was stored in the room (orders `rooms`; written at most every few seconds). */
  noteActivity(roomId: string): void {
    const now = Date.now();
    if (now - (this.lastActivityWrite.get(roomId) ?? 0) < ACTIVITY_WRITE_MS) return;
    this.lastActivityWrite.set(roomId, now);
    this.rooms
      .updateOne({ _id: roomId }, { $set: { activeAt: new Date(now) } })
      .exec()
      .catch(() => undefined);
  }

  async create(viewerId: string, input: CreateRoomArgs): Promise<RoomDoc> {
    const title = typeof input.title === 'string' ? input.title.replace(CONTROL, ' ').trim() : '';
    const length = [...title].length;
    if (length < 1 || length > MAX_TITLE_LENGTH) {
      throw new BadUserInputError(`title must be 1..${MAX_TITLE_LENGTH} characters after trimming`, 'title');
    }
    if (typeof input.public !== 'boolean') throw new BadUserInputError('public must be a boolean', 'public');
    const ttl = input.messageTtlSeconds ?? null;
    if (ttl !== null && (!Number.isInteger(ttl) || ttl < MIN_TTL_SECONDS || ttl > MAX_TTL_SECONDS)) {
      throw new BadUserInputError(
        `messageTtlSeconds must be between ${MIN_TTL_SECONDS} and ${MAX_TTL_SECONDS}, or null`,
        'messageTtlSeconds',
      );
    }
    if ((await this.counter.value(`user:${viewerId}`)) >= this.limits.perUser) {
      throw new ForbiddenError(`You are a member of ${this.limits.perUser} rooms already; leave one first`);
    }
    const day = new Date().toISOString().slice(0, 10);
    if ((await this.counter.add(`created:${viewerId}:${day}`, 1, this.limits.createdPerDay)) === null) {
      const midnight = Date.parse(`${day}T00:00:00.000Z`) + 24 * 3600 * 1000;
      throw new RateLimitedError(
        `You can create ${this.limits.createdPerDay} rooms per day; try again tomorrow`,
        midnight - Date.now(),
      );
    }
    const roomId = randomId(12);
    const slug = await this.claimSlug(roomId, input.public ? slugify(title) : null);
    const now = new Date();
    const room: RoomDoc = {
      _id: roomId,
      slug,
      title,
      public: input.public,
      createdBy: viewerId,
      createdAt: now,
      messageTtlSeconds: ttl,
      activeAt: now,
    };
    await this.rooms.create(room);
    this.cache.set(roomId, room);
    try {
      await this.join(room, viewerId);
    } catch (err) {
      // The creator could not join (a concurrent join took their last slot): no orphan room.
      await this.rooms.deleteOne({ _id: roomId }).exec();
      await this.slugs.deleteOne({ _id: slug }).exec();
      this.cache.delete(roomId);
      throw err;
    }
    return room;
  }

  /** Claims a unique slug by insert: the title's (then -2, -3, ...) for public rooms, random for private. */
  private async claimSlug(roomId: string, base: string | null): Promise<string> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const slug =
        base === null
          ? randomId(9) // 12 characters, 72 random bits: an invite nobody guesses
          : attempt === 0
            ? base
            : attempt < 10
              ? `${base}-${attempt + 1}`
              : `${base}-${randomId(3)}`;
      try {
        await this.slugs.create({ _id: slug, room: roomId });
        return slug;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    }
    throw new Error('could not find a free slug');
  }

  async bySlug(slug: unknown): Promise<RoomDoc | null> {
    if (typeof slug !== 'string' || !SLUG.test(slug)) return null;
    const claim = await this.slugs.findOne({ _id: slug }).lean().exec();
    return claim ? this.get(claim.room) : null;
  }

  /** Joins by slug (the slug is the invite). Joining again is a no-op. */
  async joinBySlug(viewerId: string, slug: unknown): Promise<RoomDoc> {
    const room = await this.bySlug(slug);
    if (!room) throw new BadUserInputError('slug is not a known room', 'slug');
    await this.join(room, viewerId);
    return room;
  }

  /**
   * The membership is claimed by insert (a second join stores nothing), then counted against
   * the viewer's and the room's bounds; a refused count undoes the claim.
   */
  private async join(room: RoomDoc, userId: string): Promise<void> {
    const _id = memberId(room._id, userId);
    try {
      await this.members.create({ _id, room: room._id, user: userId, joinedAt: new Date() });
    } catch (err) {
      if (isDuplicateKey(err)) return;
      throw err;
    }
    if ((await this.counter.add(`user:${userId}`, 1, this.limits.perUser)) === null) {
      await this.members.deleteOne({ _id }).exec();
      throw new ForbiddenError(`You are a member of ${this.limits.perUser} rooms already; leave one first`);
    }
    if ((await this.counter.add(`room:${room._id}`, 1, this.limits.maxMembers)) === null) {
      await this.counter.add(`user:${userId}`, -1);
      await this.members.deleteOne({ _id }).exec();
      throw new ForbiddenError(`This room is full (${this.limits.maxMembers} members)`);
    }
  }

  /** Leaves a room; false when the viewer was not a member (of a public room). */
  async leave(viewerId: string, roomId: unknown): Promise<boolean> {
    const { room, member } = await this.visible(viewerId, roomId);
    if (!member) return false;
    const { deletedCount } = await this.members.deleteOne({ _id: memberId(room._id, viewerId) }).exec();
    // Only the instance whose delete removed the membership changes the counts.
    if (deletedCount !== 1) return false;
    await this.counter.add(`room:${room._id}`, -1);
    await this.counter.add(`user:${viewerId}`, -1);
    // A private room is its members' only: what the viewer had open on it ends, on every instance.
    if (!room.public) await this.announceLeft(room._id, viewerId);
    return true;
  }

  private async announceLeft(roomId: string, userId: string): Promise<void> {
    await this.pubsub?.publish(ROOM_LEFT_TOPIC, { room: roomId, user: userId }).catch(() => undefined);
  }

  /**
   * deleteMyData: the user leaves every room (each room's count goes down by one, exactly as
   * for leaveRoom), their counters go, and rooms they created are attributed to nobody.
   */
  async eraseUser(userId: string, ghostId: string): Promise<void> {
    const memberships = await this.members.find({ user: userId }, { room: 1 }).lean().exec();
    for (const m of memberships) {
      const { deletedCount } = await this.members.deleteOne({ _id: memberId(m.room, userId) }).exec();
      if (deletedCount === 1) await this.counter.add(`room:${m.room}`, -1);
      await this.announceLeft(m.room, userId);
    }
    await this.counter.eraseKeysStartingWith(`user:${userId}#`);
    await this.counter.eraseKeysStartingWith(`created:${userId}:`);
    const created = await this.rooms.find({ createdBy: userId }, { _id: 1 }).lean().exec();
    if (created.length > 0) {
      await this.rooms.updateMany({ createdBy: userId }, { $set: { createdBy: ghostId } }).exec();
      for (const r of created) this.cache.delete(r._id);
    }
  }

  /** Public rooms, most recently active first. */
  async list(first: number | null | undefined, after: string | null | undefined): Promise<RoomPage> {
    const n = first ?? DEFAULT_ROOMS_PAGE;
    if (!Number.isInteger(n) || n < 0) throw new BadUserInputError('first must be a non-negative integer', 'first');
    if (n > MAX_ROOMS_PAGE) throw new BadUserInputError(`first must be at most ${MAX_ROOMS_PAGE}`, 'first');
    const filter: Record<string, unknown> = { public: true };
    if (after != null) {
      const c = decodeRoomCursor(after);
      filter.$or = [{ activeAt: { $lt: c.at } }, { activeAt: c.at, _id: { $gt: c.id } }];
    }
    const docs = await this.rooms
      .find(filter)
      .sort({ activeAt: -1, _id: 1 })
      .limit(n + 1)
      .lean<RoomDoc[]>()
      .exec();
    return { rooms: docs.slice(0, n), hasNextPage: docs.length > n, hasPreviousPage: after != null };
  }

  /** The rooms the viewer is a member of, newest membership first. */
  async mine(viewerId: string): Promise<RoomDoc[]> {
    const memberships = await this.members.find({ user: viewerId }).sort({ joinedAt: -1 }).lean().exec();
    const rooms = await Promise.all(memberships.map((m) => this.get(m.room)));
    return rooms.filter((r): r is RoomDoc => r !== null);
  }

  /** The room's members who are online, ordered by id (a stable order for pagination). */
  async onlineMembers(roomId: string): Promise<string[]> {
    const memberships = await this.members.find({ room: roomId }, { user: 1 }).lean().exec();
    return memberships
      .map((m) => m.user)
      .filter((u) => this.presence.isOnline(u))
      .sort();
  }

  static cursor = encodeRoomCursor;
}
