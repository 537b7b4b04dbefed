/**
 * Typing indicators: ephemeral, never stored.
 *
 * The publishing side only forwards state; the expiry lives on the subscribing side
 * (TypingChannel), per instance: a `typing: true` that is not renewed within TYPING_TTL_MS
 * becomes `typing: false` there. That way it does not matter which instance received the
 * setTyping calls (HTTP requests are load-balanced), every instance's subscribers see one
 * `true` and one `false` per burst of typing.
 */
import { LRUCache } from 'lru-cache';
import type { RateLimits } from '../security/rate-limit';
import { Topic, type PubSub, type TypingPayload } from '../pubsub';
import { Channel, type Renderer, type Sink } from '../realtime/fanout';
import type { Context } from '../context';
import type { UserRecord } from '../users/user.type';

/** A `typing: true` expires after this long without renewal. */
export const TYPING_TTL_MS = 5000;
/** Renewals closer together than this are not republished (the TTL is refreshed well before it ends). */
export const TYPING_RENEW_MS = 2000;

export class TypingService {
  /** When this instance last published `true` for a user in a conversation. */
  private readonly lastTrue = new LRUCache<string, number>({ max: 100000 });
  constructor(
    private readonly pubsub: PubSub,
    private readonly limits: RateLimits,
  ) {}

  /**
   * Records the viewer's typing state; returns whether anything was published. Renewals are
   * coalesced for free; what is published counts against RATE_LIMIT_TYPING, so toggling
   * true/false cannot flood a room.
   */
  async set(user: UserRecord, conversation: string, typing: boolean, ip: string): Promise<boolean> {
    const key = `${user.id}\u0000${conversation}`;
    if (typing) {
      const last = this.lastTrue.get(key);
      if (last !== undefined && Date.now() - last < TYPING_RENEW_MS) return false;
    }
    await this.limits.consume('typing', { user: user.id, ip });
    if (typing) {
      this.lastTrue.set(key, Date.now());
    } else {
      this.lastTrue.delete(key);
    }
    const payload: TypingPayload = { conversation, user, typing };
    await this.pubsub.publish(Topic.typing(conversation), payload);
    return true;
  }
}

/**
 * The subscribers of one conversation's typing on this instance: turns the published
 * stream (true, renewals, false) into exactly one `true` and one `false` per burst, and
 * expires stale `true`s. The typist never receives their own events.
 */
export class TypingChannel extends Channel {
  private readonly typists = new Map<string, { user: UserRecord; timer: NodeJS.Timeout }>();

  constructor(
    topic: string,
    render: Renderer,
    makeShared: () => Context,
    onError: (err: unknown) => void,
    private readonly ttlMs = TYPING_TTL_MS,
  ) {
    super(topic, render, makeShared, onError);
  }

  override onEvent(event: unknown): void {
    const p = event as TypingPayload;
    const current = this.typists.get(p.user.id);
    if (p.typing) {
      if (current) clearTimeout(current.timer);
      const timer = setTimeout(() => this.stop(p.user), this.ttlMs);
      timer.unref();
      this.typists.set(p.user.id, { user: p.user, timer });
      if (!current) this.emit(p);
    } else if (current) {
      this.stop(p.user);
    }
  }

  private stop(user: UserRecord): void {
    const current = this.typists.get(user.id);
    if (!current) return;
    clearTimeout(current.timer);
    this.typists.delete(user.id);
    this.emit({ conversation: '', user: current.user, typing: false });
  }

  private emit(p: TypingPayload): void {
    void this.enqueue(() => this.dispatch(p, (sink: Sink) => sink.viewerId !== p.user.id));
  }

  override endAll(error?: unknown): void {
    for (const t of this.typists.values()) clearTimeout(t.timer);
    this.typists.clear();
    super.endAll(error);
  }
}
