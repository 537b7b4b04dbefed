/**
 * Reads of the messages collection, by `_id` only.
 *
 * Every read Anonymo makes of a conversation is "these sequence numbers": the newest page,
 * a page before/after a cursor, a replay after a cursor. Because ids are
 * `<conversation>:<zero-padded seq>`, those are `_id` ranges, which MongoDB serves from the
 * primary index. FerretDB 1.x on SQLite serves no range or sort from an index, only an exact
 * `{ _id }` match (with the patch in tools/ferretdb), so there the same ranges are read as
 * point lookups. Sequence numbers have no gaps (MessageService.send), so the ids of a range
 * are known without asking the database; a missing id is tolerated (the page is filled
 * from further along) so a gap could never wedge a reader.
 */
import { LRUCache } from 'lru-cache';
import type { DatabaseKind } from '../db/database';
import { existsById, findByIds } from '../db/lookups';
import { gallopHead } from '../db/sequence';
import { messageId } from './conversation';
import type { MessageDoc, MessageModel } from './message.model';

export interface MessageStoreOptions {
  kind: DatabaseKind;
  /** Conversations whose newest sequence number is remembered (FerretDB only). Default 100000. */
  headCacheSize?: number;
}

export class MessageStore {
  private readonly heads: LRUCache<string, number>;

  constructor(
    readonly model: MessageModel,
    private readonly options: MessageStoreOptions,
  ) {
    this.heads = new LRUCache({ max: options.headCacheSize ?? 100000 });
  }

  get kind(): DatabaseKind {
    return this.options.kind;
  }

  async get(id: string): Promise<MessageDoc | null> {
    return this.model.findOne({ _id: id }).lean<MessageDoc>().exec();
  }

  async insert(doc: MessageDoc): Promise<void> {
    await this.model.collection.insertOne(doc as never);
  }

  /** Records a sequence number known to exist (own insert, or an event from another instance). */
  noteHead(conversation: string, seq: number): void {
    if (seq > (this.heads.get(conversation) ?? 0)) this.heads.set(conversation, seq);
  }

  /** The newest sequence number in the conversation (0 when empty). */
  async head(conversation: string): Promise<number> {
    if (this.options.kind === 'mongodb') {
      const last = await this.model
        .findOne({ _id: { $gte: `${conversation}:`, $lt: `${conversation};` } }, { seq: 1 })
        .sort({ _id: -1 })
        .lean<{ seq: number }>()
        .exec();
      return last?.seq ?? 0;
    }
    // From what this process last knew: one lookup when nothing changed.
    const lo = await gallopHead(this.heads.get(conversation) ?? 0, (seq) =>
      existsById(this.model, messageId(conversation, seq)),
    );
    this.noteHead(conversation, lo);
    return lo;
  }

  /**
   * Up to `limit` messages with `from <= seq <= to`, oldest first. `newest` picks the
   * newest `limit` of the range instead of the oldest.
   */
  async range(conversation: string, from: number, to: number, limit: number, newest = false): Promise<MessageDoc[]> {
    from = Math.max(from, 1);
    if (limit <= 0 || to < from) return [];
    if (this.options.kind === 'mongodb') {
      const docs = await this.model
        .find({ _id: { $gte: messageId(conversation, from), $lte: messageId(conversation, to) } })
        .sort({ _id: newest ? -1 : 1 })
        .limit(limit)
        .lean<MessageDoc[]>()
        .exec();
      return newest ? docs.reverse() : docs;
    }
    const out: MessageDoc[] = [];
    let lo = from;
    let hi = to;
    while (out.length < limit && lo <= hi) {
      const want = limit - out.length;
      const seqs: number[] = [];
      if (newest) for (let s = hi; s >= Math.max(lo, hi - want + 1); s--) seqs.push(s);
      else for (let s = lo; s <= Math.min(hi, lo + want - 1); s++) seqs.push(s);
      out.push(
        ...(await findByIds(
          this.model,
          seqs.map((s) => messageId(conversation, s)),
          this.options.kind,
        )),
      );
      if (newest) hi = seqs[seqs.length - 1] - 1;
      else lo = seqs[seqs.length - 1] + 1;
    }
    out.sort((a, b) => a.seq - b.seq);
    return newest ? out.slice(-limit) : out.slice(0, limit);
  }
}
