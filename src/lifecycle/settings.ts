/**
 * Per-conversation settings (disappearing messages) and the lifecycle fields a new message
 * gets from them. Settings are read on every send, so each instance caches them; a change
 * is announced on pub/sub so every instance drops its copy at once.
 */
import { lru } from '../util/lru';
import { upsertWithRetry } from '../db/upsert';
import { BadUserInputError } from '../errors';
import { parseMessageId } from '../messages/conversation';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc } from '../messages/message.model';
import type { SendInput, SendLifecycle } from '../messages/message.service';
import type { MessageStore } from '../messages/message.store';
import type { PubSub } from '../realtime/pubsub';
import { TTL_CHANGED_TOPIC } from './lifecycle.events';
import type { ConversationSettingModel } from './lifecycle.model';

export const MIN_TTL_SECONDS = 30;
export const MAX_TTL_SECONDS = 2592000;

export class ConversationSettings {
  private readonly ttls = lru<string, { seconds: number | null }>(100000, { ttl: 60000 });
  private stop?: () => void;

  constructor(
    private readonly model: ConversationSettingModel,
    private readonly pubsub: PubSub,
    /**
     * The TTL of a conversation nobody has set one for yet: a room's comes from
     * `CreateRoomInput.messageTtlSeconds` (the rooms domain's, handed over by app.ts). Default none.
     */
    private readonly initialTtl: (conversation: string) => Promise<number | null> = () => Promise.resolve(null),
  ) {}

  async start(): Promise<void> {
    this.stop = await this.pubsub.subscribe(TTL_CHANGED_TOPIC, ({ conversation, seconds }) =>
      this.ttls.set(conversation, { seconds }),
    );
  }

  close(): void {
    this.stop?.();
  }

  async ttlOf(conversation: string): Promise<number | null> {
    const cached = this.ttls.get(conversation);
    if (cached) return cached.seconds;
    const doc = await this.model.findOne({ _id: conversation }).lean().exec();
    const seconds = doc ? (doc.messageTtlSeconds ?? null) : await this.initialTtl(conversation);
    this.ttls.set(conversation, { seconds });
    return seconds;
  }

  async setTtl(conversation: string, seconds: number | null, by: string): Promise<void> {
    if (seconds !== null && (!Number.isInteger(seconds) || seconds < MIN_TTL_SECONDS || seconds > MAX_TTL_SECONDS)) {
      throw new BadUserInputError(
        `seconds must be between ${MIN_TTL_SECONDS} and ${MAX_TTL_SECONDS}, or null to turn disappearing messages off`,
        'seconds',
      );
    }
    // A setting, not a counter: the last writer wins, which is what two users changing it expect.
    await upsertWithRetry(() =>
      this.model.replaceOne(
        { _id: conversation },
        { _id: conversation, messageTtlSeconds: seconds, by, at: new Date() },
        { upsert: true },
      ),
    );
    this.ttls.set(conversation, { seconds });
    await this.pubsub.publish(TTL_CHANGED_TOPIC, { conversation, seconds }).catch(() => undefined);
  }
}

/** What MessageService.send asks of the lifecycle: a checked replyTo and the expiry. */
export class SendFields implements SendLifecycle {
  constructor(
    private readonly store: Pick<MessageStore, 'get'>,
    private readonly settings: ConversationSettings,
    private readonly expiry: MessageExpiry,
    /** Told of every stored message that will expire (the purge job). */
    private readonly onExpiring: (expiresAt: Date) => void = () => undefined,
    /** Records messages that will expire before they are stored (the purge job's log). */
    private readonly recordExpiring: (docs: readonly MessageDoc[]) => Promise<void> = () => Promise.resolve(),
  ) {}

  beforeStore(docs: readonly MessageDoc[]): Promise<void> {
    return docs.some((d) => d.expiresAt) ? this.recordExpiring(docs) : Promise.resolve();
  }

  stored(doc: MessageDoc): void {
    if (doc.expiresAt) this.onExpiring(doc.expiresAt);
  }

  async fieldsFor(conversation: string, input: SendInput): Promise<{ replyTo?: string; ttlMs?: number }> {
    const [replyTo, ttl] = await Promise.all([
      this.checkReplyTo(conversation, input.replyTo),
      this.settings.ttlOf(conversation),
    ]);
    // Counted from createdAt, which the send path stamps when it numbers the message.
    const expiresAt = this.expiry.expiresAt(new Date(0), ttl);
    return { ...(replyTo ? { replyTo } : {}), ...(expiresAt ? { ttlMs: expiresAt.getTime() } : {}) };
  }

  isVisible(doc: MessageDoc): boolean {
    return this.expiry.isVisible(doc);
  }

  private async checkReplyTo(conversation: string, replyTo: string | null | undefined): Promise<string | null> {
    if (replyTo === null || replyTo === undefined) return null;
    const parsed = typeof replyTo === 'string' ? parseMessageId(replyTo) : null;
    if (!parsed || parsed.conversation !== conversation) {
      throw new BadUserInputError('replyTo is not a message of this conversation', 'replyTo');
    }
    const doc = await this.store.get(replyTo);
    if (!doc || !this.expiry.isVisible(doc)) throw new BadUserInputError('replyTo is not a known message', 'replyTo');
    return replyTo;
  }
}
