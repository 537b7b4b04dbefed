import { randomBytes } from 'node:crypto';
import { faker } from '@faker-js/faker/locale/en';
import type { LRUCache } from 'lru-cache';
import { lru } from '../util/lru';
import { SharedReads } from '../util/shared-reads';
import { Types } from 'mongoose';
import type { StorageStrategy } from '../db/strategy';
import { BadUserInputError } from '../errors';
import type { UserDoc, UserModel } from './user.model';
import type { UserRecord } from './user.type';

const OBJECT_ID = /^[0-9a-f]{24}$/;

/** Parses a client-supplied user id; malformed ids are BAD_USER_INPUT before reaching Mongoose. */
export function parseUserId(id: unknown, field = 'id'): Types.ObjectId {
  if (typeof id !== 'string' || !OBJECT_ID.test(id)) {
    throw new BadUserInputError(`${field} is not a valid user id`, field);
  }
  return new Types.ObjectId(id);
}

/**
 * A new user's id: 12 random bytes in ObjectId form. A generated ObjectId is a timestamp and
 * a counter, so ids of neighbouring users could be guessed from one's own. Existing ids stay
 * valid (same form), and `_id` lookups stay equality on the primary key.
 */
export function newUserId(): Types.ObjectId {
  return new Types.ObjectId(randomBytes(12));
}

function toRecord(doc: UserDoc): UserRecord {
  return {
    id: doc._id.toHexString(),
    username: doc.username,
    avatarSeed: doc.avatarSeed,
    createdAt: doc.createdAt,
    lastSeenAt: doc.lastSeenAt ?? null,
  };
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();

/** A readable made-up name such as "QuietOtter42". */
export function makeUsername(attempt: number): string {
  const adjective = cap(faker.word.adjective({ length: { min: 3, max: 9 } }).replace(/[^a-z]/gi, ''));
  const animal = cap(faker.animal.type().replace(/[^a-z]/gi, ''));
  // Later attempts widen the number so collisions become vanishingly rare.
  const digits = attempt < 3 ? 2 : attempt < 6 ? 4 : 8;
  const n = faker.number.int({ min: 10 ** (digits - 1), max: 10 ** digits - 1 });
  return `${adjective}${animal}${n}`;
}

export interface UserServiceOptions {
  /** Cached identities (username, avatar, createdAt never change). Default 50000. */
  cacheSize?: number;
}

export class UserService {
  /** lastSeenAt in cached records is kept current by the presence service. */
  private readonly cache: LRUCache<string, UserRecord>;
  /**
   * Lookups in flight by id: after a restart every connection of a user asks at once, and
   * they share one read. `forget` detaches it (later gets read anew, its answer is not cached).
   */
  private readonly reading = new SharedReads<string, UserRecord | null>();

  constructor(
    private readonly users: UserModel,
    private readonly strategy: StorageStrategy,
    options: UserServiceOptions = {},
  ) {
    this.cache = lru(options.cacheSize ?? 50000);
  }

  private readonly createdListeners: Array<(user: UserRecord) => void> = [];

  /**
   * Calls `listener` with every user this instance creates, once stored. A user nobody knew
   * the id of until now has no blocks, conversations or settings yet: the other domains note
   * that instead of reading it back on the user's first direct message (app.ts wires them).
   */
  onCreated(listener: (user: UserRecord) => void): void {
    this.createdListeners.push(listener);
  }

  /** Creates a new anonymous identity with a unique username (the unique index decides). */
  /**
   * A new user. `id` (from {@link newUserId}) lets a caller reserve things under the id before
   * the user exists (the WebSocket transport counts the connection first, so a refused upgrade
   * leaves no user behind).
   */
  async create(id: Types.ObjectId = newUserId()): Promise<UserRecord> {
    for (let attempt = 0; ; attempt++) {
      const username = makeUsername(attempt);
      try {
        const doc = await this.users.create({
          _id: id,
          username,
          avatarSeed: username,
          createdAt: new Date(),
          online: false,
          lastSeenAt: null,
        });
        const record = toRecord(doc.toObject());
        this.cache.set(record.id, record);
        for (const listener of this.createdListeners) listener(record);
        return record;
      } catch (err) {
        if (this.strategy.isDuplicateKey(err) && attempt < 10) continue;
        throw err;
      }
    }
  }

  /** The user, or null when there is none with this id. */
  get(id: string): Promise<UserRecord | null> {
    const cached = this.cache.get(id);
    if (cached) return Promise.resolve(cached);
    if (!OBJECT_ID.test(id)) return Promise.resolve(null);
    return this.reading.get(
      id,
      async () => {
        const doc = await this.strategy.findById(this.users, new Types.ObjectId(id));
        return doc ? toRecord(doc) : null;
      },
      (record) => record && this.cache.set(id, record),
    );
  }

  /** Users by id, in the order asked (null for unknown ids); one batch for DataLoader. */
  async getMany(ids: readonly string[]): Promise<Array<UserRecord | null>> {
    const missing = ids.filter((id) => !this.cache.has(id) && OBJECT_ID.test(id));
    if (missing.length) {
      const docs = await this.strategy.findByIds(
        this.users,
        [...new Set(missing)].map((id) => new Types.ObjectId(id)),
      );
      for (const doc of docs) this.cache.set(doc._id.toHexString(), toRecord(doc));
    }
    return ids.map((id) => this.cache.get(id) ?? null);
  }

  /** Keeps the cached copy in step with presence changes seen on any instance. */
  notePresence(id: string, lastSeenAt: Date | null): void {
    const cached = this.cache.get(id);
    if (cached && lastSeenAt) this.cache.set(id, { ...cached, lastSeenAt });
  }

  /** Drops the cached copy (an identity reset, tests). */
  forget(id: string): void {
    this.cache.delete(id);
    this.reading.detach(id);
  }
}
