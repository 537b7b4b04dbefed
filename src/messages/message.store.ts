/**
 * Reads and writes of the messages collection, by `_id`.
 *
 * Every read Anonymo makes of a conversation is "these sequence numbers": the newest page,
 * a page before/after a cursor, a replay after a cursor. Because ids are
 * `<conversation>:<zero-padded seq>`, those are `_id` ranges of a gap-free sequence, which the
 * storage strategy serves as an index range (MongoDB) or as point lookups (FerretDB).
 */
import type { LRUCache } from 'lru-cache';
import { lru } from '../util/lru';
import { SharedReads } from '../util/shared-reads';
import type { InsertOutcome, StorageStrategy } from '../db/strategy';
import { SEQ_WIDTH, parseMessageId } from './conversation';
import type { MessageDoc, MessageModel } from './message.model';
import { RecentMessages, type RecentMessagesOptions } from './recent-messages';

export interface MessageStoreOptions {
  /** Conversations whose newest sequence number is remembered. Default 100000. */
  headCacheSize?: number;
  /** The in-memory newest messages of active conversations (recent-messages.ts). */
  recent?: RecentMessagesOptions;
}

/** How old a head read may be to answer `head(conversation, true)`. */
const HEAD_SHARE_MS = 250;

const keysOf = (conversation: string) => ({ prefix: `${conversation}:`, width: SEQ_WIDTH });

export class MessageStore {
  private readonly heads: LRUCache<string, number>;
  /** Head reads by conversation: the one in flight or the last finished (see head). */
  private readonly headReads = lru<string, { read: Promise<number>; done?: number }>(10000);
  /** Range reads in flight, by their arguments. */
  private readonly rangeReads = new SharedReads<string, MessageDoc[]>();
  readonly recent: RecentMessages;

  constructor(
    private readonly model: MessageModel,
    private readonly strategy: StorageStrategy,
    options: MessageStoreOptions = {},
  ) {
    this.heads = lru(options.headCacheSize ?? 100000);
    this.recent = new RecentMessages(options.recent);
  }

  async get(id: string): Promise<MessageDoc | null> {
    const parsed = parseMessageId(id);
    const held = parsed ? this.recent.get(parsed.conversation, parsed.seq) : undefined;
    return held ?? this.strategy.findById(this.model, id);
  }

  /** The newest state of a message this instance holds in memory (edits and reactions included), if any. */
  peek(id: string): MessageDoc | undefined {
    const parsed = parseMessageId(id);
    return parsed ? this.recent.peek(parsed.conversation, parsed.seq) : undefined;
  }

  /** Inserts; false when its `_id` (sequence number) or idempotency key is taken. */
  async insert(doc: MessageDoc): Promise<boolean> {
    const stored = await this.strategy.insertUnique(this.model, doc);
    if (stored) this.noteStored(doc);
    return stored;
  }

  /** Inserts several in one command; per document as StorageStrategy.insertMany. */
  async insertMany(docs: readonly MessageDoc[], ordered: boolean): Promise<InsertOutcome[]> {
    const results = await this.strategy.insertMany(this.model, docs, ordered);
    docs.forEach((doc, i) => {
      if (results[i] === true) this.noteStored(doc);
    });
    return results;
  }

  /** A message known to be stored (own insert, or an event from another instance). */
  noteStored(doc: MessageDoc): void {
    this.noteHead(doc.conversation, doc.seq);
    this.recent.add(doc);
  }

  /** A message changed after it was stored (src/lifecycle, on every instance): the cache holds the new state. */
  noteChanged(doc: MessageDoc, n?: number): void {
    this.recent.replace(doc, n);
  }

  /**
   * The message stored under an idempotency key. Not index-backed on FerretDB (a scan), so
   * only used after a failed insert showed that the key exists.
   */
  async findByDedupeKey(key: string): Promise<MessageDoc | null> {
    return this.model.findOne({ dedupeKey: key }).lean<MessageDoc>().exec();
  }

  /**
   * Abuse control: changes fields of a stored message (hidden by reports, shown again, erased
   * by a moderator) and the copy held here. Other instances are told to {@link refresh}.
   */
  async update(
    id: string,
    update: { $set?: Partial<MessageDoc>; $unset?: Record<string, ''> },
  ): Promise<MessageDoc | null> {
    await this.model.collection.updateOne({ _id: id } as never, update);
    const doc = await this.strategy.findById(this.model, id);
    if (doc) this.recent.replace(doc);
    return doc;
  }

  /** A message changed through another instance: re-reads it if a copy is held here. */
  async refresh(id: string): Promise<void> {
    const parsed = parseMessageId(id);
    if (!parsed || !this.recent.get(parsed.conversation, parsed.seq)) return;
    const doc = await this.strategy.findById(this.model, id);
    if (doc) this.recent.replace(doc);
  }

  /** Sets `readAt` on messages still unread; returns how many changed. */
  async markRead(ids: readonly string[], at: Date): Promise<number> {
    if (ids.length === 0) return 0;
    const res = await this.model.bulkWrite(
      ids.map((id) => ({
        updateOne: {
          // Counted once under concurrent markRead where the guard is atomic (MongoDB); on
          // FerretDB the caller serialises markRead per reader instead.
          filter: this.strategy.guardedFilter(id, { readAt: null }) as never,
          update: { $set: { readAt: at } },
        },
      })),
      { ordered: false },
    );
    return res.modifiedCount;
  }

  /** Records a sequence number known to exist (own insert, or an event from another instance). */
  noteHead(conversation: string, seq: number): void {
    if (seq > (this.heads.get(conversation) ?? 0)) this.heads.set(conversation, seq);
  }

  /**
   * The newest sequence number this process knows to exist, with no database command;
   * undefined when it has not seen the conversation. Others may have stored newer ones.
   */
  knownHead(conversation: string): number | undefined {
    return this.heads.get(conversation);
  }

  /**
   * The newest sequence number in the conversation (0 when empty). `recent`: a read that is
   * in flight or finished within HEAD_SHARE_MS may answer instead; for checks that tolerate
   * a head a moment old (how far back a replay reaches), so that thousands of subscribes
   * after a restart do not each read it.
   */
  async head(conversation: string, recent = false): Promise<number> {
    const shared = this.headReads.get(conversation);
    if (recent && shared && (shared.done === undefined || Date.now() - shared.done <= HEAD_SHARE_MS)) {
      return shared.read;
    }
    const entry: { read: Promise<number>; done?: number } = {
      read: this.strategy.head(this.model, keysOf(conversation), this.knownHead(conversation) ?? 0).then((head) => {
        // Also records an empty conversation as seen (0), so the next send needs no read.
        if (head >= (this.heads.get(conversation) ?? 0)) this.heads.set(conversation, head);
        entry.done = Date.now();
        return head;
      }),
    };
    this.headReads.set(conversation, entry);
    entry.read.then(
      () => undefined,
      () => this.headReads.get(conversation) === entry && this.headReads.delete(conversation),
    );
    return entry.read;
  }

  /**
   * Up to `limit` messages with `from <= seq <= to`, oldest first. `newest` picks the
   * newest `limit` of the range instead of the oldest.
   */
  async range(conversation: string, from: number, to: number, limit: number, newest = false): Promise<MessageDoc[]> {
    from = Math.max(from, 1);
    if (limit <= 0 || to < from) return [];
    const [lo, hi] = newest ? [Math.max(from, to - limit + 1), to] : [from, Math.min(to, from + limit - 1)];
    const held = this.recent.slice(conversation, lo, hi);
    if (held) return held;
    // The newer part held: only the older part is read (and held from then on). A replay
    // storm after a restart is thousands of subscribers asking for the same few messages
    // from before it, the rest having arrived since.
    const tail = this.recent.heldTail(conversation, lo, hi);
    if (tail) {
      const missing = tail[0].seq - lo;
      const older = await this.rangeOnce(conversation, lo, tail[0].seq - 1, missing, false);
      // Without a hole: the same answer as reading it all (a hole would pull later numbers in).
      if (older.length === missing && older[0]?.seq === lo && older[missing - 1].seq === tail[0].seq - 1) {
        this.recent.prepend(conversation, older);
        return [...older, ...tail];
      }
    }
    const docs = await this.rangeOnce(conversation, from, to, limit, newest);
    // A complete run that reaches the newest number known: the start of a cached run.
    const complete = docs.length === hi - lo + 1 && docs[0]?.seq === lo && docs[docs.length - 1].seq === hi;
    if (complete) this.recent.addRun(conversation, docs, hi >= (this.knownHead(conversation) ?? Infinity));
    return docs;
  }

  /** One database read for identical ranges asked for at once (concurrent replays of the same messages). */
  private rangeOnce(conversation: string, from: number, to: number, limit: number, newest: boolean) {
    const key = `${conversation}\u0000${from}\u0000${to}\u0000${limit}\u0000${newest}`;
    const read = this.rangeReads.get(key, () =>
      this.strategy.range<MessageDoc>(this.model, keysOf(conversation), from, to, limit, newest),
    );
    // Each caller its own array (the documents are shared, as the ones held in memory are).
    return read.then((docs) => docs.slice());
  }
}
