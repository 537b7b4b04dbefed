/**
 * Reads and writes of the messages collection, by `_id`.
 *
 * Every read Anonymo makes of a conversation is "these sequence numbers": the newest page,
 * a page before/after a cursor, a replay after a cursor. Because ids are
 * `<conversation>:<zero-padded seq>`, those are `_id` ranges of a gap-free sequence, which the
 * storage strategy serves as an index range (MongoDB) or as point lookups (FerretDB).
 */
import { LRUCache } from 'lru-cache';
import type { StorageStrategy } from '../db/strategy';
import { SEQ_WIDTH } from './conversation';
import type { MessageDoc, MessageModel } from './message.model';

export interface MessageStoreOptions {
  /** Conversations whose newest sequence number is remembered. Default 100000. */
  headCacheSize?: number;
}

const keysOf = (conversation: string) => ({ prefix: `${conversation}:`, width: SEQ_WIDTH });

export class MessageStore {
  private readonly heads: LRUCache<string, number>;

  constructor(
    private readonly model: MessageModel,
    private readonly strategy: StorageStrategy,
    options: MessageStoreOptions = {},
  ) {
    this.heads = new LRUCache({ max: options.headCacheSize ?? 100000 });
  }

  async get(id: string): Promise<MessageDoc | null> {
    return this.strategy.findById(this.model, id);
  }

  /** Inserts; false when its `_id` (sequence number) or idempotency key is taken. */
  async insert(doc: MessageDoc): Promise<boolean> {
    return this.strategy.insertUnique(this.model, doc);
  }

  /** Inserts several in one command (unordered); per document as StorageStrategy.insertMany. */
  async insertMany(docs: readonly MessageDoc[]): Promise<Array<true | 'duplicate' | Error>> {
    return this.strategy.insertMany(this.model, docs);
  }

  /**
   * The message stored under an idempotency key. Not index-backed on FerretDB (a scan), so
   * only used after a failed insert showed that the key exists.
   */
  async findByDedupeKey(key: string): Promise<MessageDoc | null> {
    return this.model.findOne({ dedupeKey: key }).lean<MessageDoc>().exec();
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

  /** The newest sequence number in the conversation (0 when empty). */
  async head(conversation: string): Promise<number> {
    const head = await this.strategy.head(this.model, keysOf(conversation), this.knownHead(conversation) ?? 0);
    // Also records an empty conversation as seen (0), so the next send needs no read.
    if (head >= (this.heads.get(conversation) ?? 0)) this.heads.set(conversation, head);
    return head;
  }

  /**
   * Up to `limit` messages with `from <= seq <= to`, oldest first. `newest` picks the
   * newest `limit` of the range instead of the oldest.
   */
  async range(conversation: string, from: number, to: number, limit: number, newest = false): Promise<MessageDoc[]> {
    return this.strategy.range(this.model, keysOf(conversation), from, to, limit, newest);
  }
}
