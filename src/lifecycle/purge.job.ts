/**
 * Removes expired messages (disappearing messages, RETENTION_DAYS) from the database. FerretDB
 * 1.x has no TTL indexes, so every instance runs this on a timer; it is idempotent, so
 * several instances running it at once only repeat each other's work.
 *
 * A purged message leaves a stub in its place: `_id`, conversation, seq and the per-sender
 * counts, with no text, sender, recipient, reply or reactions. The stub keeps the sequence
 * gap-free, so the newest number of a conversation stays derivable by `_id` lookups (see
 * MessageStore.head) even when its newest message expired, and unread counts stay a
 * subtraction. Readers skip stubs like any expired message.
 *
 * If a concurrent read-modify-write (FerretDB, another instance reacting to the message at
 * that moment) puts the old document back, it lacks `purgedAt` and the next run purges it again.
 */
import type { Logger } from 'pino';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc, MessageModel } from '../messages/message.model';
import type { MessageStore } from '../messages/message.store';
import type { PubSub } from '../realtime/pubsub';
import { MESSAGES_PURGED_TOPIC } from './lifecycle.events';
import type { ReactionModel } from './lifecycle.model';

// Small: FerretDB applies an unordered bulk of replacements one by one, and a 500-statement
// bulk outlasted the socket timeout, so every pass failed and stalled other writes.
const BATCH = 50;

export interface PurgeResult {
  purged: number;
  ms: number;
}

export class PurgeJob {
  private timer?: NodeJS.Timeout;
  private running?: Promise<PurgeResult>;
  private stopListening?: () => void;

  constructor(
    private readonly messages: MessageModel,
    private readonly reactions: ReactionModel,
    private readonly expiry: MessageExpiry,
    private readonly cache: Pick<MessageStore, 'noteChanged'>,
    private readonly pubsub: PubSub,
    private readonly options: { intervalMs: number; logger: Logger },
  ) {}

  async start(): Promise<void> {
    // Every instance's recent-message cache drops purged messages, whichever instance purged.
    this.stopListening = await this.pubsub.subscribe(MESSAGES_PURGED_TOPIC, ({ stubs }) =>
      stubs.forEach((stub) => this.cache.noteChanged(stub)),
    );
    this.timer = setInterval(() => {
      this.run().catch((err: unknown) => this.options.logger.warn({ err }, 'message purge failed; will retry'));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopListening?.();
    await this.running?.catch(() => undefined);
  }

  /** One pass (a pass already running is joined, not doubled). */
  run(): Promise<PurgeResult> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<PurgeResult> {
    const started = Date.now();
    const now = new Date();
    const cutoff = this.expiry.retentionCutoff(now.getTime());
    const expired = [{ expiresAt: { $lte: now } }, ...(cutoff ? [{ createdAt: { $lte: cutoff } }] : [])];
    let purged = 0;
    for (;;) {
      const docs = await this.messages.collection
        .find<Pick<MessageDoc, '_id' | 'conversation' | 'seq' | 'counts' | 'expiresAt' | 'createdAt'>>(
          { purgedAt: { $exists: false }, $or: expired } as never,
          { projection: { _id: 1, conversation: 1, seq: 1, counts: 1, expiresAt: 1, createdAt: 1 }, limit: BATCH },
        )
        .toArray();
      if (docs.length === 0) break;
      const stubs = docs.map((d) => ({
        _id: d._id,
        conversation: d.conversation,
        seq: d.seq,
        ...(d.counts ? { counts: d.counts } : {}),
        expiresAt: d.expiresAt ?? d.createdAt,
        purgedAt: now,
      }));
      await this.messages.collection.bulkWrite(
        stubs.map(({ _id, ...replacement }) => ({
          replaceOne: { filter: { _id } as never, replacement: replacement as never },
        })),
        { ordered: false },
      );
      const changed = stubs as unknown as MessageDoc[];
      changed.forEach((stub) => this.cache.noteChanged(stub));
      await this.pubsub.publish(MESSAGES_PURGED_TOPIC, { stubs: changed }).catch(() => undefined);
      await this.reactions.deleteMany({ message: { $in: docs.map((d) => d._id) } });
      purged += docs.length;
      if (docs.length < BATCH) break;
    }
    const ms = Date.now() - started;
    if (purged > 0) this.options.logger.info({ purged, ms }, 'expired messages purged');
    return { purged, ms };
  }
}
