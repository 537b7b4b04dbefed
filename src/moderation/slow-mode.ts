/**
 * Slow mode: one message per N seconds per user in the lobby (set by a moderator) or a room
 * (set by a moderator or the room's creator). The setting is stored and travels to every instance;
 * the per-user spacing is kept in Redis when REDIS_URL is set (`SET NX PX`: one atomic
 * command, shared by all instances), else in this process's memory.
 */
import type { Redis } from 'ioredis';
import { lru } from '../util/lru';
import type { Model } from 'mongoose';
import type { Context } from '../context';
import { BadUserInputError, RateLimitedError } from '../errors';
import { LOBBY, roomKey } from '../messages/conversation';
import type { SendAdmission, SendRequest } from '../messages/message.policy';
import type { PubSub } from '../realtime/pubsub';
import type { AuditLog } from './audit';
import type { SendCheck } from './message-policy';
import { SLOW_MODE_TOPIC } from './moderation.events';
import type { SlowModeDoc } from './moderation.model';

export const MAX_SLOW_MODE_SECONDS = 3600;

export class SlowMode implements SendCheck {
  private readonly seconds = new Map<string, number>();
  /** Without Redis: when each user may next send, per conversation. */
  private readonly next = lru<string, number>(100000);
  private unsubscribe?: () => void;

  constructor(
    private readonly model: Model<SlowModeDoc>,
    private readonly pubsub: PubSub,
    private readonly audit: AuditLog,
    private readonly redis?: { client: Redis; prefix: string },
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.pubsub.subscribe(SLOW_MODE_TOPIC, (c) => this.note(c.conversation, c.seconds));
    // One document per conversation with slow mode on: a handful.
    for (const d of await this.model.find().lean<SlowModeDoc[]>().exec()) this.note(d._id, d.seconds);
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private note(conversation: string, seconds: number): void {
    if (seconds > 0) this.seconds.set(conversation, seconds);
    else this.seconds.delete(conversation);
  }

  /** The conversation's slow mode in seconds (0: off). */
  of(conversation: string): number {
    return this.seconds.get(conversation) ?? 0;
  }

  async set(by: string, conversation: string, seconds: number): Promise<boolean> {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_SLOW_MODE_SECONDS) {
      throw new BadUserInputError(`seconds must be an integer from 0 (off) to ${MAX_SLOW_MODE_SECONDS}`, 'seconds');
    }
    if (seconds === 0) await this.model.deleteOne({ _id: conversation }).exec();
    else {
      await this.model
        .replaceOne({ _id: conversation }, { seconds, by, at: new Date() }, { upsert: true })
        .exec()
        .catch(async (err: { code?: number }) => {
          if (err.code !== 11000) throw err;
          await this.model.replaceOne({ _id: conversation }, { seconds, by, at: new Date() }).exec();
        });
    }
    this.note(conversation, seconds);
    await this.pubsub.publish(SLOW_MODE_TOPIC, { conversation, seconds }).catch(() => undefined);
    await this.audit.record(by, 'setSlowMode', conversation, { seconds });
    return true;
  }

  async check(ctx: Context, send: SendRequest): Promise<SendAdmission> {
    // The lobby and rooms (set by a moderator, or a room's creator); never direct messages.
    if (send.to !== null) return {};
    const conversation = send.room ? roomKey(send.room) : LOBBY;
    // Only conversations with slow mode on are in the map: an unknown room id costs nothing.
    const seconds = this.of(conversation);
    if (seconds === 0) return {};
    const wait = await this.claim(`${conversation}:${ctx.user.id}`, seconds * 1000);
    if (wait > 0) throw new RateLimitedError(`Slow mode: one message per ${seconds} s here`, wait);
    return {};
  }

  /** Claims the user's next slot; returns 0, or how long until they may send. */
  private async claim(key: string, ms: number): Promise<number> {
    if (this.redis) {
      const k = `${this.redis.prefix}slow:${key}`;
      try {
        if ((await this.redis.client.set(k, '1', 'PX', ms, 'NX')) === 'OK') return 0;
        return Math.max(1, await this.redis.client.pttl(k));
      } catch {
        // Redis away: fall back to this instance's memory rather than refusing or allowing everything.
      }
    }
    const now = Date.now();
    const next = this.next.get(key) ?? 0;
    if (next > now) return next - now;
    this.next.set(key, now + ms);
    return 0;
  }
}
