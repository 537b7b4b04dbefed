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
 * Cost on FerretDB, where the query is a scan of the collection (only `_id` equality is
 * indexed): a pass reads the expired messages with ONE cursor and writes their stubs in small
 * batches. Asking again for "the next 50 expired" after each batch rescanned the stubs already
 * written, in front of the rest, every time: 100,000 expired messages never finished.
 * And while no message that could expire exists (no retention, no disappearing messages
 * pending), passes are skipped, so a large history is not scanned every interval for nothing:
 * a stored message with an expiry wakes every instance (MESSAGES_EXPIRING_TOPIC), and every
 * `SAFETY_EVERY` passes one scan runs anyway in case such a wake-up was lost.
 *
 * If a concurrent read-modify-write (FerretDB, another instance reacting to the message at
 * that moment) puts the old document back, it lacks `purgedAt` and the next run purges it again.
 */
import type { Logger } from 'pino';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc, MessageModel } from '../messages/message.model';
import type { MessageStore } from '../messages/message.store';
import type { PubSub } from '../realtime/pubsub';
import { MESSAGES_EXPIRING_TOPIC, MESSAGES_PURGED_TOPIC } from './lifecycle.events';
import type { ReactionModel } from './lifecycle.model';

// Small: FerretDB applies an unordered bulk of replacements one by one, and a 500-statement
// bulk outlasted the socket timeout, so every pass failed and stalled other writes.
const BATCH = 50;
// Documents per cursor round trip: the projection keeps them small.
const CURSOR_BATCH = 1000;
// An idle instance still scans every this many passes (a lost wake-up costs at most this delay).
const SAFETY_EVERY = 10;

type Candidate = Pick<MessageDoc, '_id' | 'conversation' | 'seq' | 'counts' | 'expiresAt' | 'createdAt'>;

export interface PurgeResult {
  purged: number;
  ms: number;
  /** The pass was skipped: no message that could expire is known to exist. */
  skipped?: boolean;
}

export class PurgeJob {
  private timer?: NodeJS.Timeout;
  private running?: Promise<PurgeResult>;
  private stopListening: Array<() => void> = [];
  private stopping = false;
  /** No message with an expiry was left unpurged at the end of the last scan. */
  private idle = false;
  /** Bumped by every wake-up: a scan may only conclude "idle" if none came while it ran. */
  private wakeups = 0;
  private passesSkipped = 0;
  private lastAnnounced = 0;
  private readonly totals = { scanned: 0, skipped: 0, purged: 0 };

  constructor(
    private readonly messages: MessageModel,
    private readonly reactions: ReactionModel,
    private readonly expiry: MessageExpiry,
    private readonly cache: Pick<MessageStore, 'noteChanged'>,
    private readonly pubsub: PubSub,
    private readonly options: { intervalMs: number; logger: Logger },
  ) {}

  async start(): Promise<void> {
    this.stopListening = [
      // Every instance's recent-message cache drops purged messages, whichever instance purged.
      await this.pubsub.subscribe(MESSAGES_PURGED_TOPIC, ({ stubs }) =>
        stubs.forEach((stub) => this.cache.noteChanged(stub)),
      ),
      await this.pubsub.subscribe(MESSAGES_EXPIRING_TOPIC, () => this.wake()),
    ];
    this.timer = setInterval(() => {
      this.run().catch((err: unknown) => this.options.logger.warn({ err }, 'message purge failed; will retry'));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.stopListening.forEach((stop) => stop());
    await this.running?.catch(() => undefined);
  }

  /**
   * A message that expires was stored here: this instance scans again, and so does every
   * other (one announcement per instance and purge interval is enough: an instance woken by
   * it scans everything stored until its scan starts).
   */
  stored(expiresAt: Date): void {
    this.wake();
    const now = Date.now();
    if (now - this.lastAnnounced < this.options.intervalMs) return;
    this.lastAnnounced = now;
    this.pubsub.publish(MESSAGES_EXPIRING_TOPIC, { at: expiresAt.getTime() }).catch(() => {
      // Another instance then finds it at its next safety scan (or this one purges it).
    });
  }

  /** Since start, for the metrics: passes that scanned, passes skipped, messages purged. */
  stats(): { scanned: number; skipped: number; purged: number } {
    return { ...this.totals };
  }

  /** One pass (a pass already running is joined, not doubled). */
  run(): Promise<PurgeResult> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private wake(): void {
    this.wakeups++;
    this.idle = false;
  }

  private async pass(): Promise<PurgeResult> {
    const started = Date.now();
    const retention = this.expiry.retentionMs !== undefined;
    if (this.idle && !retention && ++this.passesSkipped < SAFETY_EVERY) {
      this.totals.skipped++;
      return { purged: 0, ms: 0, skipped: true };
    }
    this.passesSkipped = 0;
    this.totals.scanned++;
    const wakeupsBefore = this.wakeups;
    const now = new Date();
    const purged = await this.purgeExpired(now);
    // With retention every message expires some day, so there is never nothing to wait for.
    if (!retention && !this.stopping) {
      const pending = await this.messages.collection.findOne(
        { purgedAt: { $exists: false }, expiresAt: { $gt: now } } as never,
        { projection: { _id: 1 } },
      );
      if (!pending && this.wakeups === wakeupsBefore) this.idle = true;
    }
    const ms = Date.now() - started;
    if (purged > 0) this.options.logger.info({ purged, ms }, 'expired messages purged');
    return { purged, ms };
  }

  private async purgeExpired(now: Date): Promise<number> {
    const cutoff = this.expiry.retentionCutoff(now.getTime());
    const expired = [{ expiresAt: { $lte: now } }, ...(cutoff ? [{ createdAt: { $lte: cutoff } }] : [])];
    const cursor = this.messages.collection.find<Candidate>({ purgedAt: { $exists: false }, $or: expired } as never, {
      projection: { _id: 1, conversation: 1, seq: 1, counts: 1, expiresAt: 1, createdAt: 1 },
      batchSize: CURSOR_BATCH,
    });
    let purged = 0;
    let batch: Candidate[] = [];
    try {
      for await (const doc of cursor) {
        batch.push(doc);
        if (batch.length < BATCH) continue;
        purged += await this.writeStubs(batch, now);
        this.totals.purged += BATCH;
        batch = [];
        if (this.stopping) return purged;
      }
      if (batch.length > 0) {
        purged += await this.writeStubs(batch, now);
        this.totals.purged += batch.length;
      }
    } finally {
      await cursor.close().catch(() => undefined);
    }
    return purged;
  }

  private async writeStubs(docs: Candidate[], now: Date): Promise<number> {
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
    return docs.length;
  }
}
