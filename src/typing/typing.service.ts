/**
 * Typing indicators: ephemeral, never stored.
 *
 * The publishing side only forwards state; the expiry lives on the subscribing side
 * (TypingChannel in typing.channel.ts), per instance: a `typing: true` that is not renewed within TYPING_TTL_MS
 * becomes `typing: false` there. That way it does not matter which instance received the
 * setTyping calls (HTTP requests are load-balanced), every instance's subscribers see one
 * `true` and one `false` per burst of typing.
 */
import { lru } from '../util/lru';
import type { PubSub } from '../realtime/pubsub';
import type { RateLimits } from '../security/rate-limit';
import type { UserRecord } from '../users/user.type';
import { typingTopic, type TypingPayload } from './typing.events';

/** A `typing: true` expires after this long without renewal. */
export const TYPING_TTL_MS = 5000;
/** Renewals closer together than this are not republished (the TTL is refreshed well before it ends). */
export const TYPING_RENEW_MS = 2000;

export class TypingService {
  /** When this instance last published `true` for a user in a conversation. */
  private readonly lastTrue = lru<string, number>(100000);
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
    await this.pubsub.publish(typingTopic(conversation), payload);
    return true;
  }
}
