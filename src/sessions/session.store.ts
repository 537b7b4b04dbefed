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
import type { LRUCache } from 'lru-cache';
import { lru } from '../util/lru';
import { SharedReads } from '../util/shared-reads';
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
  /** Minimum time between two writes that only extend a session's expiry. Default 1 minute. */
  touchAfterMs?: number;
  /** Sessions kept in memory (read without a database command). Default 100000. */
  cacheSize?: number;
  /**
   * How long a cached session is trusted without re-reading it. A session's content never
   * changes under one id (a new identity gets a new id), and an identity reset on another
   * instance evicts it here through `forget` (the session-revoked event); this bounds the
   * window should that event be lost. Default 5 minutes.
   */
  cacheTtlMs?: number;
  /** How often expired sessions are deleted where there are no TTL indexes. Default 10 minutes. */
  purgeEveryMs?: number;
}

type Callback<T = void> = (err?: unknown, value?: T) => void;

export class MongoSessionStore extends session.Store {
  private readonly collection;
  /** When each session's expiry was last written (derived from the stored expiry on read). */
  private readonly touched = lru<string, number>(100000);
  private readonly cache: LRUCache<string, { session: string; expires: number }>;
  /**
   * Reads in flight by session id. After a restart the cache is cold and every tab of an
   * identity reconnects at once, each upgrade asking for the same session: they share one
   * `findOne`. A write or revocation of the session detaches the read (later gets read anew,
   * and the detached one's answer is not cached).
   */
  private readonly reading = new SharedReads<string, SessionDoc | null>();
  private stopExpiry?: () => void;

  constructor(private readonly opts: SessionStoreOptions) {
    super();
    this.collection = opts.connection.collection<SessionDoc>('sessions');
    this.cache = lru(opts.cacheSize ?? 100000, { ttl: opts.cacheTtlMs ?? 300000 });
  }

  /** Drops a session from the memory cache (it was revoked, possibly on another instance). */
  forget(sid: string): void {
    this.cache.delete(sid);
    this.touched.delete(sid);
    this.reading.detach(sid);
  }

  private remember(sid: string, session: string, expires: Date): void {
    this.cache.set(sid, { session, expires: expires.getTime() });
    // The expiry is written as "now + ttl", so the last write was at "expiry - ttl".
    this.touched.set(sid, Math.max(this.touched.get(sid) ?? 0, expires.getTime() - this.opts.ttlMs));
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
    const cached = this.cache.get(sid);
    if (cached) {
      if (cached.expires > Date.now()) return cb(null, JSON.parse(cached.session) as SessionData);
      this.cache.delete(sid);
    }
    this.reading
      .get(
        sid,
        () => this.collection.findOne({ _id: sid }),
        // Not if the session was written or revoked meanwhile: this answer predates that.
        (doc) => doc && doc.expires.getTime() > Date.now() && this.remember(sid, doc.session, doc.expires),
      )
      .then((doc) => {
        if (!doc || doc.expires.getTime() <= Date.now()) return cb(null, null);
        // Parsed for each caller: express-session changes the object it is given.
        cb(null, JSON.parse(doc.session) as SessionData);
      })
      .catch(cb);
  }

  override set(sid: string, sess: SessionData, cb?: Callback): void {
    this.reading.detach(sid);
    const doc: SessionDoc = {
      _id: sid,
      session: JSON.stringify(sess),
      expires: this.expiresOf(sess),
      ...(sess.userId ? { userId: sess.userId } : {}),
    };
    upsertWithRetry(() => this.collection.replaceOne({ _id: sid }, doc, { upsert: true }))
      .then(() => {
        this.remember(sid, doc.session, doc.expires);
        this.touched.set(sid, Date.now());
        cb?.();
      })
      .catch((err) => cb?.(err));
  }

  override touch(sid: string, sess: SessionData, cb?: Callback): void {
    // Every request would otherwise write to extend the expiry; once a minute is plenty
    // for sessions that live for months.
    const last = this.touched.get(sid);
    if (last !== undefined && Date.now() - last < (this.opts.touchAfterMs ?? 60000)) return cb?.();
    const expires = this.expiresOf(sess);
    this.collection
      .updateOne({ _id: sid }, { $set: { expires } })
      .then(() => {
        const cached = this.cache.get(sid);
        if (cached) cached.expires = expires.getTime();
        this.touched.set(sid, Date.now());
        cb?.();
      })
      .catch((err) => cb?.(err));
  }

  override destroy(sid: string, cb?: Callback): void {
    this.forget(sid);
    this.collection
      .deleteOne({ _id: sid })
      .then(() => cb?.())
      .catch((err) => cb?.(err));
  }

  close(): void {
    this.stopExpiry?.();
  }
}
