/**
 * "Talk to a stranger": the queue, pairing, MATCHED/ENDED events, and the rule that two users
 * whose stranger chat ended may not message each other (this is the messages domain's
 * DirectPolicy, handed over by app.ts).
 *
 * Pairing itself is the matcher's (stranger.matcher.ts, stranger.redis.ts): atomic across
 * instances. This service adds what is per instance: a timer per waiting user, so a user with
 * interests who found nobody sharing one is paired with anyone after STRANGER_ANY_AFTER_MS,
 * and the queue entry of a user whose last connection here closed is removed.
 */
import { lru } from '../util/lru';
import type { Logger } from 'pino';
import { BadUserInputError, ForbiddenError } from '../errors';
import type { DirectPolicy } from '../messages/message.service';
import type { PubSub } from '../realtime/pubsub';
import { parseUserId } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import { STRANGER_ENDED_TOPIC, strangerTopic, type StrangerPayload } from './stranger.events';
import { pairKey, type EnqueueResult, type Pairing, type StrangerMatcher } from './stranger.matcher';
import type { StrangerEndedModel } from './stranger.model';

export const MAX_INTERESTS = 5;
export const MAX_INTEREST_LENGTH = 24;
const INTEREST = /^[\p{L}\p{N}-]{1,24}$/u;

/** Interests as compared: trimmed, lower-cased, 1..24 letters, digits or `-`, at most 5, no repeats. */
export function normalizeInterests(raw: unknown): string[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) throw new BadUserInputError('interests must be a list of strings', 'interests');
  if (raw.length > MAX_INTERESTS) {
    throw new BadUserInputError(`interests: at most ${MAX_INTERESTS}`, 'interests');
  }
  const out: string[] = [];
  for (const item of raw) {
    const v = typeof item === 'string' ? item.trim().toLowerCase() : '';
    if (!INTEREST.test(v)) {
      throw new BadUserInputError(
        `each interest must be 1..${MAX_INTEREST_LENGTH} letters, digits or "-" after trimming`,
        'interests',
      );
    }
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

export interface StrangerOptions {
  anyAfterMs: number;
  /** STRANGER_QUEUE_LEASE_MS: leases of queue entries are renewed every third of it. Default 15000. */
  queueLeaseMs?: number;
  logger: Logger;
  /** Users never to be paired with this one (blocking, when it lands). Default none. */
  excludedFor?: (userId: string) => Promise<string[]>;
}

export class StrangerService implements DirectPolicy {
  /** Ended pairs seen (they never un-end): a DM between them is refused without a lookup. */
  private readonly endedSeen = lru<string, true>(100000);
  /**
   * Pairs looked up and found not ended: a DM between them needs no lookup (a send to a known
   * partner stays within its command budget). An end on any instance is heard through
   * STRANGER_ENDED_TOPIC and drops the entry; the TTL bounds staleness if that event is lost.
   */
  private readonly notEnded = lru<string, true>(100000, { ttl: 60_000 });
  /**
   * Users created on this instance (see created) for whom no ended chat has been heard of: a
   * DM with them needs no lookup either. Dropped like notEnded: by STRANGER_ENDED_TOPIC, or
   * by the TTL.
   */
  private readonly neverEnded = lru<string, true>(100000, { ttl: 60_000 });
  private stopEndedEvents?: () => void;
  /** Open WebSocket connections per user on this instance. */
  private readonly connections = new Map<string, number>();
  /** When to look again for a waiting user who came through this instance. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Users whose findStranger came through this instance and who may still be waiting. */
  private readonly queuedHere = new Set<string>();
  private stopped = false;
  private leaseTimer?: NodeJS.Timeout;
  /** Set when the server starts draining (before its WebSockets close). */
  private stopping = false;

  constructor(
    private readonly matcher: StrangerMatcher,
    private readonly ended: StrangerEndedModel,
    private readonly users: { get(id: string): Promise<UserRecord | null> },
    private readonly pubsub: PubSub,
    private readonly options: StrangerOptions,
  ) {}

  private excluded(userId: string): Promise<string[]> {
    return this.options.excludedFor?.(userId) ?? Promise.resolve([]);
  }

  /** Queues the viewer; a chat they are in ends first ("Next"). */
  async find(viewer: UserRecord, rawInterests: unknown): Promise<boolean> {
    const interests = normalizeInterests(rawInterests);
    const current = await this.matcher.partner(viewer.id);
    if (current) await this.endChat(viewer, current.with);
    this.queuedHere.add(viewer.id);
    const result = await this.matcher.enqueue(viewer.id, interests, Date.now(), await this.excluded(viewer.id));
    await this.settle(viewer.id, result);
    return true;
  }

  private async settle(userId: string, result: EnqueueResult): Promise<void> {
    this.clearTimer(userId);
    if (result.since === null) this.queuedHere.delete(userId);
    if (result.matched) {
      this.clearTimer(result.matched.with);
      this.queuedHere.delete(result.matched.with);
      await this.announce(result.matched);
      return;
    }
    if (result.since === null) return;
    if (result.recheck) this.schedule(userId, 20 + Math.random() * 80);
    else {
      const due = result.since + this.options.anyAfterMs - Date.now();
      // Past the wait, the others are told by the matcher that this user is eligible.
      if (due > 0) this.schedule(userId, due + 10);
    }
  }

  private schedule(userId: string, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(userId);
      void (async () => {
        const result = await this.matcher.retry(userId, Date.now(), await this.excluded(userId));
        await this.settle(userId, result);
      })().catch((err) => this.options.logger.warn({ err, userId }, 'strangers: retry failed'));
    }, delayMs);
    timer.unref();
    this.timers.set(userId, timer);
  }

  private clearTimer(userId: string): void {
    const t = this.timers.get(userId);
    if (t) clearTimeout(t);
    this.timers.delete(userId);
  }

  private async announce(p: Pairing): Promise<void> {
    const [a, b] = await Promise.all([this.users.get(p.user), this.users.get(p.with)]);
    if (!a || !b) return;
    const toA: StrangerPayload = { kind: 'MATCHED', with: b, sharedInterests: p.shared };
    const toB: StrangerPayload = { kind: 'MATCHED', with: a, sharedInterests: p.shared };
    await Promise.all([this.pubsub.publish(strangerTopic(a.id), toA), this.pubsub.publish(strangerTopic(b.id), toB)]);
  }

  async leaveQueue(viewer: { id: string }): Promise<boolean> {
    this.clearTimer(viewer.id);
    this.queuedHere.delete(viewer.id);
    return this.matcher.leave(viewer.id);
  }

  /** The viewer's current stranger, if any. */
  async current(viewer: { id: string }): Promise<{ user: UserRecord; shared: string[] } | null> {
    const p = await this.matcher.partner(viewer.id);
    const user = p ? await this.users.get(p.with) : null;
    return p && user ? { user, shared: p.shared } : null;
  }

  /**
   * Ends the viewer's chat with `withId`: from now on neither may message the other and they
   * are never paired again; the other receives ENDED. False when they were not paired.
   */
  async endChat(viewer: UserRecord, withId: unknown): Promise<boolean> {
    parseUserId(withId, 'with');
    const other = withId as string;
    if (!(await this.matcher.end(viewer.id, other))) return false;
    const key = pairKey(viewer.id, other);
    try {
      await this.ended.create({ _id: key, at: new Date() });
    } catch (err) {
      if ((err as { code?: number })?.code !== 11000) throw err;
    }
    this.markEnded(key);
    await this.pubsub.publish(STRANGER_ENDED_TOPIC, { pair: key }).catch(() => undefined);
    const payload: StrangerPayload = { kind: 'ENDED', with: viewer, sharedInterests: [] };
    await this.pubsub.publish(strangerTopic(other), payload);
    return true;
  }

  /**
   * deleteMyData: out of the queue, out of a current chat (the stranger receives ENDED), and
   * the records of ended chats that name the user.
   */
  async eraseUser(user: UserRecord): Promise<void> {
    await this.leaveQueue(user);
    const current = await this.matcher.partner(user.id);
    if (current) await this.endChat(user, current.with);
    const escaped = user.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await this.ended.deleteMany({ _id: { $regex: `(^${escaped}:)|(:${escaped}$)` } }).exec();
    await this.matcher.forget(user.id);
  }

  /** DirectPolicy: users whose stranger chat ended may not message each other. */
  async assertMaySend(senderId: string, recipientId: string): Promise<void> {
    const key = pairKey(senderId, recipientId);
    if (this.notEnded.has(key)) return;
    if (!this.endedSeen.has(key) && (this.neverEnded.has(senderId) || this.neverEnded.has(recipientId))) return;
    let ended = this.endedSeen.has(key);
    if (!ended && (await this.ended.exists({ _id: key }).exec()) !== null) {
      this.markEnded(key);
      ended = true;
    }
    if (ended) throw new ForbiddenError('This stranger chat has ended');
    this.notEnded.set(key, true);
  }

  /** A user just created on this instance has had no stranger chat, so none has ended. */
  created(userId: string): void {
    this.neverEnded.set(userId, true);
  }

  private markEnded(pair: string): void {
    this.endedSeen.set(pair, true);
    this.notEnded.delete(pair);
    for (const user of pair.split(':')) this.neverEnded.delete(user);
  }

  /** Hears chats ended on every instance; holds the queue entries of users here, and sweeps dead ones. */
  async start(): Promise<void> {
    this.stopEndedEvents = await this.pubsub.subscribe(STRANGER_ENDED_TOPIC, ({ pair }) => this.markEnded(pair));
    const every = Math.max(100, Math.floor((this.options.queueLeaseMs ?? 15000) / 3));
    this.leaseTimer = setInterval(() => {
      this.renewLeases().catch((err) => this.options.logger.warn({ err }, 'strangers: lease renewal failed'));
    }, every);
    this.leaseTimer.unref();
  }

  private renewing = false;

  /**
   * Renews the leases of the waiting users connected here (or who queued here), then removes
   * entries whose lease ran out: those of an instance that died without taking its users out.
   */
  async renewLeases(): Promise<void> {
    if (this.renewing || this.stopped) return;
    this.renewing = true;
    try {
      const queuedBefore = [...this.queuedHere];
      const now = Date.now();
      const waiting = new Set(
        await this.matcher.renew((id) => this.connections.has(id) || this.queuedHere.has(id), now),
      );
      // Users who queued here but were paired or left through another instance.
      for (const id of queuedBefore) if (!waiting.has(id) && !this.timers.has(id)) this.queuedHere.delete(id);
      const swept = await this.matcher.sweep(Date.now());
      if (swept > 0) this.options.logger.info({ swept }, 'strangers: removed queue entries whose lease ran out');
    } finally {
      this.renewing = false;
    }
  }

  /** A WebSocket connection of the user opened on this instance. */
  connected(user: { id: string }): void {
    this.connections.set(user.id, (this.connections.get(user.id) ?? 0) + 1);
  }

  /** A WebSocket connection closed: with the user's last one here, they leave the queue. */
  disconnected(user: { id: string }): void {
    const left = (this.connections.get(user.id) ?? 1) - 1;
    if (left > 0) {
      this.connections.set(user.id, left);
      return;
    }
    this.connections.delete(user.id);
    // At shutdown the user stays queued: their client reconnects to another instance.
    if (this.stopping || (!this.matcher.cheapLeave && !this.queuedHere.has(user.id))) return;
    this.leaveQueue(user).catch((err) =>
      this.options.logger.warn({ err, userId: user.id }, 'strangers: could not leave the queue'),
    );
  }

  /** The server is draining: connections closing now are not users leaving. */
  draining(): void {
    this.stopping = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopEndedEvents?.();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.matcher.close();
  }
}
