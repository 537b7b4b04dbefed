/**
 * Group commit of sends: the messages that arrive while one write is in flight are stored
 * together in the next, as one `insertMany`. On the embedded FerretDB (SQLite has one writer)
 * one insert per message cannot pass ~1,000/s while batches of 10-50 reach 4-8k/s; on
 * MongoDB it saves round trips. At low load a batch is a single message written at once, so
 * batching adds no waiting; under load a batch is whatever queued meanwhile (up to `maxBatch`).
 *
 * Guarantees kept:
 * - Numbers without gaps, in order: inside a batch each conversation's messages take
 *   consecutive numbers after the newest this process knows, and the batch is written
 *   *ordered*, grouped by conversation. A failing document (its number taken by another
 *   instance, or its idempotency key already used) stops the write there, so nothing after
 *   it is stored and no number is skipped; the unwritten ones go again in the next batch.
 *   (Unordered, a used idempotency key in the middle of a run would leave a hole that a
 *   later message fills after its successors were delivered.)
 * - Acknowledgement only after the message's own batch is acknowledged by the database.
 * - Exactly once with a clientId: a taken idempotency key answers with the stored message.
 * - Direct-message counts (MessageDoc.counts) chain from the previous message, including the
 *   previous one in the same batch: exact, because a message is stored only if all before it
 *   in its conversation were.
 */
import { lru } from '../util/lru';
import { messageId } from './conversation';
import type { MessageDoc } from './message.model';
import type { MessageStore } from './message.store';

/** A message to store, before it has a number. */
export interface Draft {
  conversation: string;
  text: string;
  sender: string;
  recipient: string | null;
  clientId: string | null;
  dedupeKey?: string;
  /** Lifecycle (src/lifecycle): the message answered, and how long until it expires. */
  replyTo?: string;
  ttlMs?: number;
  /** Abuse control: sent while shadow-banned (visible to the sender only; counts for no one). */
  shadow?: boolean;
  /**
   * The conversation is taken to be empty (ConversationService.preparePair): with no head
   * known here, it is numbered from 1 without a read, which the insert verifies.
   */
  assumedEmpty?: boolean;
}

/** The stored message; `fresh` is false when an earlier message with the same clientId was returned. */
export interface Stored {
  doc: MessageDoc;
  fresh: boolean;
}

interface Pending {
  draft: Draft;
  attempts: number;
  resolve(result: Stored): void;
  reject(err: unknown): void;
}

export interface SendBatcherOptions {
  /** Most messages per write. Default 256. */
  maxBatch?: number;
  /** Attempts per message before it fails (each lost race with another instance is one). Default 50. */
  maxAttempts?: number;
  /**
   * Awaited before each write with the documents about to be inserted (the lifecycle records
   * those that will expire). If it fails, the write fails: nothing is stored.
   */
  beforeInsert?: (docs: readonly MessageDoc[]) => Promise<void>;
}

export class SendBatcher {
  private queue: Pending[] = [];
  private writing = false;
  private idleWaiters: Array<() => void> = [];
  /** The newest message's per-sender counts, by conversation (direct conversations). */
  private readonly lastCounts = lru<string, { seq: number; counts: Record<string, number> }>(50000);
  private readonly maxBatch: number;
  private readonly maxAttempts: number;
  private readonly beforeInsert?: (docs: readonly MessageDoc[]) => Promise<void>;

  constructor(
    private readonly store: MessageStore,
    options: SendBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.maxAttempts = options.maxAttempts ?? 50;
    this.beforeInsert = options.beforeInsert;
  }

  /** Stores the message; resolves once the database acknowledged it. */
  submit(draft: Draft): Promise<Stored> {
    return new Promise((resolve, reject) => {
      this.queue.push({ draft, attempts: 0, resolve, reject });
      this.kick();
    });
  }

  /** Resolves when nothing is queued or being written (or after `timeoutMs`). */
  drain(timeoutMs: number): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private kick(): void {
    if (this.writing) return;
    if (this.queue.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
      return;
    }
    this.writing = true;
    const batch = this.queue.splice(0, this.maxBatch);
    this.write(batch)
      .catch((err: unknown) => batch.forEach((p) => p.reject(err)))
      .finally(() => {
        this.writing = false;
        this.kick();
      });
  }

  private async write(batch: Pending[]): Promise<void> {
    // Grouped by conversation, arrival order kept within each.
    const groups = new Map<string, Pending[]>();
    for (const p of batch) {
      const g = groups.get(p.draft.conversation);
      if (g) g.push(p);
      else groups.set(p.draft.conversation, [p]);
    }
    const drafted = await Promise.all(
      [...groups].map(async ([conversation, pendings]) => {
        // The number after the newest this process knows of (or 0 for a conversation assumed
        // empty), with no read; when another writer took it, the write fails there and the
        // retry asks the database.
        const known =
          this.store.knownHead(conversation) ?? (pendings.some((p) => p.draft.assumedEmpty) ? 0 : undefined);
        const head = pendings[0].attempts > 0 || known === undefined ? await this.store.head(conversation) : known;
        let counts = pendings[0].draft.recipient ? await this.countsAt(conversation, head) : undefined;
        return pendings.map((p, i) => {
          const seq = head + 1 + i;
          if (counts && !p.draft.shadow) counts = { ...counts, [p.draft.sender]: (counts[p.draft.sender] ?? 0) + 1 };
          const { dedupeKey, ttlMs, assumedEmpty: _assumed, ...rest } = p.draft;
          const createdAt = new Date();
          const doc: MessageDoc = {
            _id: messageId(conversation, seq),
            ...rest,
            seq,
            ...(dedupeKey ? { dedupeKey } : {}),
            createdAt,
            readAt: null,
            ...(counts ? { counts } : {}),
            ...(ttlMs ? { expiresAt: new Date(createdAt.getTime() + ttlMs) } : {}),
          };
          return { p, doc };
        });
      }),
    );
    const items = drafted.flat();
    await this.beforeInsert?.(items.map((x) => x.doc));
    const results = await this.store.insertMany(
      items.map((x) => x.doc),
      true,
    );
    const retry: Pending[] = [];
    for (let i = 0; i < items.length; i++) {
      const { p, doc } = items[i];
      const r = results[i];
      if (r === true) {
        if (doc.counts) this.lastCounts.set(doc.conversation, { seq: doc.seq, counts: doc.counts });
        p.resolve({ doc, fresh: true });
      } else if (r === 'skipped') {
        // Not tried: an earlier document of the ordered write failed. Not an attempt, or a
        // burst of retried sends (each an already used clientId, one failure per write, as
        // after a restart) would exhaust the attempts of the messages queued behind them.
        retry.push(p);
      } else if (r === 'duplicate') {
        const existing = await this.resolveDuplicate(doc);
        if (existing) p.resolve({ doc: existing, fresh: false });
        else {
          // Its number was taken by another writer: a lost race, counted.
          p.attempts++;
          retry.push(p);
        }
      } else {
        p.reject(r);
      }
    }
    const exhausted = retry.filter((p) => p.attempts >= this.maxAttempts);
    exhausted.forEach((p) => p.reject(new Error(`no free sequence number in ${p.draft.conversation}`)));
    this.queue.unshift(...retry.filter((p) => p.attempts < this.maxAttempts));
  }

  /**
   * After a unique-key failure: the message already stored under the same idempotency key,
   * or null when the number was taken by another writer (then the send goes again).
   */
  private async resolveDuplicate(doc: MessageDoc): Promise<MessageDoc | null> {
    const taken = await this.store.get(doc._id);
    if (taken) {
      this.store.noteStored(taken);
      return doc.dedupeKey && taken.dedupeKey === doc.dedupeKey ? taken : null;
    }
    return doc.dedupeKey ? this.store.findByDedupeKey(doc.dedupeKey) : null;
  }

  /** Per-sender counts of the conversation's message `head` (none before the first). */
  private async countsAt(conversation: string, head: number): Promise<Record<string, number>> {
    if (head === 0) return {};
    const cached = this.lastCounts.get(conversation);
    if (cached?.seq === head) return cached.counts;
    return (await this.store.get(messageId(conversation, head)))?.counts ?? {};
  }
}
