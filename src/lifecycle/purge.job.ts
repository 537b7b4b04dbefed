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
 * Finding what expired without scanning every message: FerretDB 1.x indexes only `_id`, so
 * any other query reads the whole collection (at 1M messages, minutes of a core, holding
 * SQLite's WAL open while writes pile up in it, and every lookup slows down meanwhile). So a
 * message that will expire is first recorded in `message_expiries` (written before the
 * message itself), and a pass reads only that small collection, then the messages it names by
 * `_id`. While nothing is recorded, passes are skipped altogether: a stored message with an
 * expiry wakes every instance (MESSAGES_EXPIRING_TOPIC), and once an hour each instance looks
 * again in case such a wake-up was lost.
 *
 * Two cases still scan the messages, with no socket timeout (background work; a timeout made
 * them fail and start over forever): RETENTION_DAYS, where every message expires (the scan
 * runs each pass; on a large FerretDB prefer MongoDB or a long PURGE_INTERVAL_MS), and, once
 * per database, a database from before the log, whose timed messages are recorded by one scan
 * (marked done by the MIGRATED entry).
 *
 * If a concurrent read-modify-write (FerretDB, another instance reacting to the message at
 * that moment) puts the old document back, it lacks `purgedAt` and the next run purges it again.
 */
import type { FindCursor } from 'mongodb';
import type { StorageStrategy } from '../db/strategy';
import type { Logger } from 'pino';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc, MessageModel } from '../messages/message.model';
import type { MessageStore } from '../messages/message.store';
import type { PubSub } from '../realtime/pubsub';
import { MESSAGES_EXPIRING_TOPIC, MESSAGES_PURGED_TOPIC } from './lifecycle.events';
import type { MessageExpiryDoc, MessageExpiryModel, ReactionModel } from './lifecycle.model';

// Small: FerretDB applies an unordered bulk of replacements one by one, and a 500-statement
// bulk outlasted the socket timeout, so every pass failed and stalled other writes.
const BATCH = 50;
// Documents per cursor round trip: the projection keeps them small.
const CURSOR_BATCH = 1000;
// An idle instance still scans once an hour, in case a wake-up was lost: that needs a failed
// publish AND the instance that stored the message gone before it expires (every instance scans
// when it starts). Rare enough for an hour; a scan of a 1M-message FerretDB costs tens of seconds.
const SAFETY_SCAN_MS = 3_600_000;
// A scan of a large collection on FerretDB outlasts the driver's socket timeout (DB_TIMEOUT_MS x 4)
// in one round trip when few documents match. It is background work: no timeout (the driver
// takes a per-operation socketTimeoutMS; CSOT's timeoutMS does not lift the socket timeout).
const SCAN = { socketTimeoutMS: 0 } as const;
// The log entry that says this database's timed messages were all recorded (see the header).
// Its `at` lies beyond any expiry, so `at <= now` never returns it.
const MIGRATED = '~migrated';
const MIGRATED_AT = new Date(8_640_000_000_000_000);
// A log entry whose message does not exist: its insert failed after the entry was written.
// Dropped once it is this far past its time (the message cannot still be on its way).
const ORPHAN_GRACE_MS = 60_000;

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
  /** This database's timed messages are all in the log (see the header). */
  private migrated = false;

  constructor(
    private readonly messages: MessageModel,
    private readonly reactions: ReactionModel,
    private readonly expiries: MessageExpiryModel,
    private readonly strategy: Pick<StorageStrategy, 'insertMany'>,
    private readonly expiry: MessageExpiry,
    private readonly store: Pick<MessageStore, 'noteChanged'>,
    private readonly pubsub: PubSub,
    private readonly options: { intervalMs: number; logger: Logger },
  ) {}

  /**
   * Records messages that will expire, before they are inserted (SendFields.beforeStore). With
   * retention every message expires and each pass scans them all anyway: nothing to record.
   */
  async track(docs: readonly MessageDoc[]): Promise<void> {
    if (this.expiry.retentionMs !== undefined) return;
    const entries = docs.filter((d) => d.expiresAt).map((d) => ({ _id: d._id, at: d.expiresAt! }));
    if (entries.length > 0) await this.record(entries);
  }

  async start(): Promise<void> {
    this.stopListening = [
      // Every instance's recent-message cache drops purged messages, whichever instance purged.
      await this.pubsub.subscribe(MESSAGES_PURGED_TOPIC, ({ stubs }) =>
        stubs.forEach((stub) => this.store.noteChanged(stub)),
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
    const safetyEvery = Math.max(1, Math.round(SAFETY_SCAN_MS / this.options.intervalMs));
    if (this.idle && !retention && ++this.passesSkipped < safetyEvery) {
      this.totals.skipped++;
      return { purged: 0, ms: 0, skipped: true };
    }
    this.passesSkipped = 0;
    this.totals.scanned++;
    const wakeupsBefore = this.wakeups;
    if (!this.migrated) await this.migrate();
    const now = new Date();
    let purged = await this.purgeRecorded(now);
    if (retention && !this.stopping) purged += await this.purgeScanned(now);
    // With retention every message expires some day, so there is never nothing to wait for.
    if (!retention && !this.stopping) {
      const pending = await this.expiries.collection.findOne({ at: { $lt: MIGRATED_AT } } as never, {
        projection: { _id: 1 },
      });
      if (!pending && this.migrated && this.wakeups === wakeupsBefore) this.idle = true;
    }
    const ms = Date.now() - started;
    if (purged > 0) this.options.logger.info({ purged, ms }, 'expired messages purged');
    return { purged, ms };
  }

  /** The recorded messages whose time has come, read through one cursor, purged 50 at a time. */
  private async purgeRecorded(now: Date): Promise<number> {
    const cursor = this.expiries.collection.find<MessageExpiryDoc>({ at: { $lte: now } } as never, {
      batchSize: CURSOR_BATCH,
      ...SCAN,
    });
    return this.inBatches(cursor, BATCH, (entries) => this.purgeEntries(entries, now));
  }

  /**
   * Purges the messages of these entries that did expire, and settles each entry: removed when
   * its message is purged or gone, or moved to the message's own expiry when that is later (an
   * entry left by a failed insert whose number another message took).
   */
  private async purgeEntries(entries: MessageExpiryDoc[], now: Date): Promise<number> {
    // From the database, not a cache: `_id` lookups, the one query FerretDB serves from an index.
    const docs = await Promise.all(
      entries.map((e) =>
        this.messages.collection.findOne<Candidate & Pick<MessageDoc, 'purgedAt'>>({ _id: e._id } as never, {
          projection: { _id: 1, conversation: 1, seq: 1, counts: 1, expiresAt: 1, createdAt: 1, purgedAt: 1 },
        }),
      ),
    );
    const due: Candidate[] = [];
    const done: string[] = [];
    const later: MessageExpiryDoc[] = [];
    entries.forEach((entry, i) => {
      const doc = docs[i];
      const at = doc?.expiresAt ? new Date(doc.expiresAt) : undefined;
      if (!doc) {
        if (now.getTime() - new Date(entry.at).getTime() > ORPHAN_GRACE_MS) done.push(entry._id);
      } else if (doc.purgedAt || !at) done.push(entry._id);
      else if (at > now) later.push({ _id: entry._id, at });
      else {
        due.push(doc);
        done.push(entry._id);
      }
    });
    const purged = due.length > 0 ? await this.writeStubs(due, now) : 0;
    const ops = [
      ...done.map((_id) => ({ deleteOne: { filter: { _id } } })),
      ...later.map(({ _id, at }) => ({ replaceOne: { filter: { _id }, replacement: { at } } })),
    ];
    if (ops.length > 0) await this.expiries.collection.bulkWrite(ops as never, { ordered: false });
    return purged;
  }

  /** RETENTION_DAYS: every message expires, so a pass reads them all (one cursor). */
  private async purgeScanned(now: Date): Promise<number> {
    const cutoff = this.expiry.retentionCutoff(now.getTime());
    const expired = [{ expiresAt: { $lte: now } }, ...(cutoff ? [{ createdAt: { $lte: cutoff } }] : [])];
    const cursor = this.messages.collection.find<Candidate>({ purgedAt: { $exists: false }, $or: expired } as never, {
      projection: { _id: 1, conversation: 1, seq: 1, counts: 1, expiresAt: 1, createdAt: 1 },
      batchSize: CURSOR_BATCH,
      ...SCAN,
    });
    return this.inBatches(cursor, BATCH, (docs) => this.writeStubs(docs, now));
  }

  /**
   * Once per database: records the timed messages stored before the log existed (one scan),
   * then writes MIGRATED. A new database has no messages, so this is one empty read.
   */
  private async migrate(): Promise<void> {
    if (this.expiry.retentionMs === undefined && !(await this.expiries.exists({ _id: MIGRATED }))) {
      const cursor = this.messages.collection.find<Candidate>(
        { purgedAt: { $exists: false }, expiresAt: { $exists: true } } as never,
        { projection: { _id: 1, expiresAt: 1 }, batchSize: CURSOR_BATCH, ...SCAN },
      );
      await this.inBatches(cursor, CURSOR_BATCH, async (docs) => {
        await this.record(docs.filter((d) => d.expiresAt).map((d) => ({ _id: d._id, at: d.expiresAt! })));
        return docs.length;
      });
      // Stopped part way: not complete, so not marked (the next start scans again).
      if (this.stopping) return;
      await this.record([{ _id: MIGRATED, at: MIGRATED_AT }]);
    }
    this.migrated = true;
  }

  /**
   * Hands a cursor's documents to `each` in batches of `size` (it returns how many it purged),
   * stopping between batches when the job stops; closes the cursor either way.
   */
  private async inBatches<T>(cursor: FindCursor<T>, size: number, each: (batch: T[]) => Promise<number>) {
    let done = 0;
    let batch: T[] = [];
    try {
      for await (const doc of cursor) {
        batch.push(doc);
        if (batch.length < size) continue;
        done += await each(batch);
        batch = [];
        if (this.stopping) return done;
      }
      if (batch.length > 0) done += await each(batch);
    } finally {
      await cursor.close().catch(() => undefined);
    }
    return done;
  }

  /** Inserts log entries; one already there (an earlier attempt at the same number) is kept. */
  private async record(entries: MessageExpiryDoc[]): Promise<void> {
    const failed = (await this.strategy.insertMany(this.expiries, entries, false)).find((o) => o instanceof Error);
    if (failed) throw failed;
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
    changed.forEach((stub) => this.store.noteChanged(stub));
    await this.pubsub.publish(MESSAGES_PURGED_TOPIC, { stubs: changed }).catch(() => undefined);
    await this.reactions.deleteMany({ message: { $in: docs.map((d) => d._id) } });
    this.totals.purged += docs.length;
    return docs.length;
  }
}
