/**
 * The stranger queue and its pairings, race-free across instances. Two implementations of
 * one contract: RedisStrangerMatcher (stranger.redis.ts: one Lua script, atomic) when
 * REDIS_URL is set, and DbStrangerMatcher here (claim by insert on FerretDB/MongoDB) otherwise.
 *
 * The rules they share (pickStranger): a user is never paired with themselves, with anyone
 * they ended a chat with, or with anyone in `excluded` (blocking); among the waiting users,
 * the longest-waiting one who shares an interest comes first; without a shared interest a
 * pair is eligible once either of them has waited `anyAfterMs`, or at once when neither named
 * any interest.
 */
import type { StrangerEndedModel, StrangerPairModel, StrangerQueueModel } from './stranger.model';

export interface Pairing {
  /** The user the call was for. */
  user: string;
  /** Their stranger. */
  with: string;
  shared: string[];
}

export interface EnqueueResult {
  /** A pairing this call made (its maker publishes MATCHED), or null. */
  matched: Pairing | null;
  /** The viewer's place in the queue began at this time (ms), when they are waiting. */
  since: number | null;
  /**
   * A claim lost to a concurrent attempt that may still be undone: look again shortly, so
   * nobody is left waiting while an eligible stranger waits too.
   */
  recheck?: boolean;
}

export interface StrangerMatcher {
  /**
   * Whether `leave` is cheap enough to call on every user's last disconnect (Redis), or only
   * for users known to have queued through this instance (a database write).
   */
  readonly cheapLeave: boolean;
  /**
   * Queues the user (keeping their place when already queued, with the new interests) and
   * pairs them at once if someone eligible waits. A user in a pairing is not queued.
   */
  enqueue(userId: string, interests: string[], now: number, excluded: string[]): Promise<EnqueueResult>;
  /** Looks again for a stranger for a user who is still waiting (their wait grew). */
  retry(userId: string, now: number, excluded: string[]): Promise<EnqueueResult>;
  /** Leaves the queue; true if the user was waiting. */
  leave(userId: string): Promise<boolean>;
  /** The user's current stranger and shared interests, if paired. */
  partner(userId: string): Promise<{ with: string; shared: string[] } | null>;
  /** Ends the pairing of `a` with `b`; false if they were not paired with each other. */
  end(a: string, b: string): Promise<boolean>;
  /**
   * Renews the lease of the queue entries `isMine` picks (users with a connection on this
   * instance, or who queued through it); returns every user waiting now.
   */
  renew(isMine: (userId: string) => boolean, now: number): Promise<string[]>;
  /** Removes entries whose lease ran out (their instance died); returns how many. */
  sweep(now: number): Promise<number>;
  /** deleteMyData: whatever the matcher keeps about the user besides the queue and the pairing. */
  forget(userId: string): Promise<void>;
  close(): Promise<void>;
}

export interface Waiting {
  user: string;
  interests: string[];
  since: number;
}

/** Key of a pair of users, the same both ways. */
export const pairKey = (a: string, b: string) => (a < b ? `${a}:${b}` : `${b}:${a}`);

/** Candidates in the order they should be tried: shared interests first (oldest first), then eligible others. */
export function rankStrangers(me: Waiting, queue: Waiting[], now: number, anyAfterMs: number): Pairing[] {
  const mine = new Set(me.interests);
  const sharing: Pairing[] = [];
  const others: Pairing[] = [];
  for (const w of [...queue].sort((x, y) => x.since - y.since)) {
    if (w.user === me.user) continue;
    const shared = w.interests.filter((i) => mine.has(i));
    if (shared.length > 0) sharing.push({ user: me.user, with: w.user, shared });
    else if (
      (me.interests.length === 0 && w.interests.length === 0) ||
      now - me.since >= anyAfterMs ||
      now - w.since >= anyAfterMs
    ) {
      others.push({ user: me.user, with: w.user, shared: [] });
    }
  }
  return [...sharing, ...others];
}

const isDuplicateKey = (err: unknown) => (err as { code?: number })?.code === 11000;

/**
 * Without Redis: the queue is a collection scanned on each attempt (it holds only the people
 * waiting right now), and a pairing is claimed by inserting one document per user with the
 * user's id as `_id`: the smaller id first, then the larger. Of two attempts on overlapping
 * pairs exactly one gets each `_id`; the loser of the second insert removes its first one and
 * moves on, so nobody ends up in two pairings, and the fixed order means two attempts cannot
 * each hold one half forever.
 */
export class DbStrangerMatcher implements StrangerMatcher {
  readonly cheapLeave = false;

  constructor(
    private readonly queue: StrangerQueueModel,
    private readonly pairs: StrangerPairModel,
    private readonly ended: StrangerEndedModel,
    private readonly anyAfterMs: number,
    /** How long a queue entry lives without renewal (STRANGER_QUEUE_LEASE_MS). */
    private readonly leaseMs: number,
  ) {}

  async enqueue(userId: string, interests: string[], now: number, excluded: string[]): Promise<EnqueueResult> {
    if (await this.partner(userId)) return { matched: null, since: null };
    const existing = await this.queue.findOne({ _id: userId }).lean().exec();
    const since = existing?.since ?? now;
    // From the moment of writing: a slow database must not hand out an entry already past its lease.
    const leaseUntil = Date.now() + this.leaseMs;
    if (existing) await this.queue.updateOne({ _id: userId }, { $set: { interests, leaseUntil } }).exec();
    else {
      try {
        await this.queue.create({ _id: userId, interests, since, leaseUntil });
      } catch (err) {
        // The same user queueing twice at once: one entry is enough.
        if (!isDuplicateKey(err)) throw err;
      }
    }
    return this.match({ user: userId, interests, since }, now, excluded);
  }

  async retry(userId: string, now: number, excluded: string[]): Promise<EnqueueResult> {
    const me = await this.queue.findOne({ _id: userId }).lean().exec();
    if (!me) return { matched: null, since: null };
    return this.match({ user: userId, interests: me.interests, since: me.since }, now, excluded);
  }

  private async match(me: Waiting, now: number, excluded: string[]): Promise<EnqueueResult> {
    const docs = await this.queue.find({}).lean().exec();
    // An entry past its lease belongs to a dead instance: never paired with (the sweep removes it).
    const waiting = docs
      .filter((d) => (d.leaseUntil ?? 0) >= now || d._id === me.user)
      .map((d) => ({ user: d._id, interests: d.interests, since: d.since }));
    const skip = new Set(excluded);
    let contended = false;
    for (const candidate of rankStrangers(me, waiting, now, this.anyAfterMs)) {
      if (skip.has(candidate.with)) continue;
      if ((await this.ended.exists({ _id: pairKey(me.user, candidate.with) }).exec()) !== null) continue;
      const outcome = await this.claim(me.user, candidate.with, candidate.shared);
      if (outcome === 'claimed') {
        await this.queue.deleteOne({ _id: me.user }).exec();
        await this.queue.deleteOne({ _id: candidate.with }).exec();
        return { matched: candidate, since: null };
      }
      // Someone is pairing the viewer (they announce it) or took the candidate; either
      // claim may still be undone, so the caller looks again shortly.
      contended = true;
      if (outcome === 'user-taken') break;
    }
    return { matched: null, since: me.since, recheck: contended };
  }

  private async claim(
    user: string,
    other: string,
    shared: string[],
  ): Promise<'claimed' | 'user-taken' | 'other-taken'> {
    const [first, second] = user < other ? [user, other] : [other, user];
    const at = new Date();
    try {
      await this.pairs.create({ _id: first, with: second, shared, at });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return first === user ? 'user-taken' : 'other-taken';
    }
    try {
      await this.pairs.create({ _id: second, with: first, shared, at });
    } catch (err) {
      await this.pairs.deleteOne({ _id: first, with: second }).exec();
      if (!isDuplicateKey(err)) throw err;
      return second === user ? 'user-taken' : 'other-taken';
    }
    return 'claimed';
  }

  async leave(userId: string): Promise<boolean> {
    return (await this.queue.deleteOne({ _id: userId }).exec()).deletedCount === 1;
  }

  /** The database matcher keeps ended chats in `stranger_ended` only, which the service erases. */
  async forget(_userId: string): Promise<void> {}

  async renew(isMine: (userId: string) => boolean, _now: number): Promise<string[]> {
    const waiting = (await this.queue.find({}, { _id: 1 }).lean().exec()).map((d) => d._id);
    const mine = waiting.filter(isMine);
    if (mine.length > 0) {
      await this.queue.updateMany({ _id: { $in: mine } }, { $set: { leaseUntil: Date.now() + this.leaseMs } }).exec();
    }
    return waiting;
  }

  async sweep(now: number): Promise<number> {
    const r = await this.queue
      .deleteMany({ $or: [{ leaseUntil: { $lt: now } }, { leaseUntil: { $exists: false } }] })
      .exec();
    return r.deletedCount;
  }

  async partner(userId: string): Promise<{ with: string; shared: string[] } | null> {
    const doc = await this.pairs.findOne({ _id: userId }).lean().exec();
    return doc ? { with: doc.with, shared: doc.shared } : null;
  }

  async end(a: string, b: string): Promise<boolean> {
    const mine = await this.pairs.deleteOne({ _id: a, with: b }).exec();
    const theirs = await this.pairs.deleteOne({ _id: b, with: a }).exec();
    return mine.deletedCount === 1 || theirs.deletedCount === 1;
  }

  async close(): Promise<void> {}
}
