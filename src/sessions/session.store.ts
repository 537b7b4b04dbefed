/**
 * express-session store on MongoDB, reading and writing sessions by `_id` only.
 *
 * Not connect-mongo: its reads filter on `{ _id, $or: [expiry conditions] }`, which FerretDB
 * 1.x answers by scanning every stored session (measured: a lookup cost grows with the
 * number of anonymous identities ever created). Here a read is a single `_id` lookup and
 * expiry is checked in code. Expired sessions are purged by a TTL index on MongoDB and by
 * a periodic delete on FerretDB, which has no TTL indexes.
 */
import session, { type SessionData } from 'express-session';
import type { Connection } from 'mongoose';
import { LRUCache } from 'lru-cache';
import type { StorageStrategy } from '../db/strategy';
import { upsertWithRetry } from '../db/upsert';

interface SessionDoc {
  _id: string;
  /** The session as JSON (it holds only the user id and cookie settings). */
  session: string;
  expires: Date;
  userId?: string;
}

export interface SessionStoreOptions {
  connection: Connection;
  strategy: StorageStrategy;
  /** Lifetime of a session without activity. */
  ttlMs: number;
  /** Minimum time between two writes that only extend a session's expiry. Default 1 hour. */
  touchAfterMs?: number;
  /** How often expired sessions are deleted where there are no TTL indexes. Default 10 minutes. */
  purgeEveryMs?: number;
}

type Callback<T = void> = (err?: unknown, value?: T) => void;

export class MongoSessionStore extends session.Store {
  private readonly collection;
  private readonly touched = new LRUCache<string, number>({ max: 100000 });
  private stopExpiry?: () => void;

  constructor(private readonly opts: SessionStoreOptions) {
    super();
    this.collection = opts.connection.collection<SessionDoc>('sessions');
  }

  /** Creates the expiry index, or starts the periodic purge where there are no TTL indexes. */
  async init(): Promise<void> {
    this.stopExpiry = await this.opts.strategy.expireBy(
      this.collection,
      'expires',
      this.opts.purgeEveryMs ?? 600000,
      () => this.purge(),
    );
  }

  /** Deletes expired sessions; returns how many. */
  async purge(): Promise<number> {
    const r = await this.collection.deleteMany({ expires: { $lt: new Date() } });
    return r.deletedCount;
  }

  private expiresOf(sess: SessionData): Date {
    const e = sess.cookie?.expires;
    return e ? new Date(e) : new Date(Date.now() + this.opts.ttlMs);
  }

  override get(sid: string, cb: Callback<SessionData | null>): void {
    this.collection
      .findOne({ _id: sid })
      .then((doc) => {
        if (!doc || doc.expires.getTime() <= Date.now()) return cb(null, null);
        cb(null, JSON.parse(doc.session) as SessionData);
      })
      .catch(cb);
  }

  override set(sid: string, sess: SessionData, cb?: Callback): void {
    const doc: SessionDoc = {
      _id: sid,
      session: JSON.stringify(sess),
      expires: this.expiresOf(sess),
      ...(sess.userId ? { userId: sess.userId } : {}),
    };
    upsertWithRetry(() => this.collection.replaceOne({ _id: sid }, doc, { upsert: true }))
      .then(() => {
        this.touched.set(sid, Date.now());
        cb?.();
      })
      .catch((err) => cb?.(err));
  }

  override touch(sid: string, sess: SessionData, cb?: Callback): void {
    // Every request would otherwise write to extend the expiry; once an hour is plenty
    // for sessions that live for months.
    const last = this.touched.get(sid);
    if (last !== undefined && Date.now() - last < (this.opts.touchAfterMs ?? 3600000)) return cb?.();
    this.collection
      .updateOne({ _id: sid }, { $set: { expires: this.expiresOf(sess) } })
      .then(() => {
        this.touched.set(sid, Date.now());
        cb?.();
      })
      .catch((err) => cb?.(err));
  }

  override destroy(sid: string, cb?: Callback): void {
    this.touched.delete(sid);
    this.collection
      .deleteOne({ _id: sid })
      .then(() => cb?.())
      .catch((err) => cb?.(err));
  }

  close(): void {
    this.stopExpiry?.();
  }
}
