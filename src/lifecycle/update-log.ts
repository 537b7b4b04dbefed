/**
 * The update sequence of each conversation: every edit, deletion and reaction change of one
 * of its messages takes the next number, 1, 2, 3, ..., claimed by inserting
 * `<conversation>|u|<n>` (the unique `_id` decides between writers on several instances, as
 * for message sequence numbers). `messageUpdated(after)` replays the numbers after a point;
 * live subscribers receive them in number order (see lifecycle.channel.ts).
 *
 * An entry holds only the message id: a reader loads the message's current state, so a
 * replay delivers each changed message once, as it is now.
 */
import { lru } from '../util/lru';
import type { SeqKeys, StorageStrategy } from '../db/strategy';
import { BadUserInputError } from '../errors';
import { KeyedQueue } from '../util/keyed-queue';
import type { UpdateDoc, UpdateModel } from './lifecycle.model';

const WIDTH = 12;
const keysOf = (conversation: string): SeqKeys => ({ prefix: `${conversation}|u|`, width: WIDTH });
export const updateId = (conversation: string, n: number) => `${conversation}|u|${String(n).padStart(WIDTH, '0')}`;

export function encodeUpdateCursor(n: number): string {
  return Buffer.from(`u${n}`).toString('base64url');
}

/** Decodes an update cursor (from `Message.updateCursor` or `messageUpdatesCursor`); else BAD_USER_INPUT. */
export function decodeUpdateCursor(cursor: unknown, field: string): number {
  if (typeof cursor !== 'string' || cursor.length > 24 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw new BadUserInputError(`${field} is not a valid update cursor`, field);
  }
  const m = /^u(\d{1,12})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n) || encodeUpdateCursor(n) !== cursor) {
    throw new BadUserInputError(`${field} is not a valid update cursor`, field);
  }
  return n;
}

export class UpdateLog {
  private readonly heads = lru<string, number>(100000);
  private readonly queue = new KeyedQueue();

  constructor(
    readonly model: UpdateModel,
    private readonly strategy: StorageStrategy,
  ) {}

  noteHead(conversation: string, n: number): void {
    if (n > (this.heads.get(conversation) ?? 0)) this.heads.set(conversation, n);
  }

  /** The newest update number of the conversation (0: none yet). */
  async head(conversation: string): Promise<number> {
    const n = await this.strategy.head(this.model, keysOf(conversation), this.heads.get(conversation) ?? 0);
    this.noteHead(conversation, n);
    return n;
  }

  /** Records a change of `messageId`; resolves with its number once stored. */
  append(conversation: string, messageId: string): Promise<number> {
    return this.queue.run(conversation, async () => {
      for (let attempt = 0; ; attempt++) {
        const n = (await this.head(conversation)) + 1;
        try {
          const doc: UpdateDoc = {
            _id: updateId(conversation, n),
            conversation,
            n,
            message: messageId,
            at: new Date(),
          };
          await this.model.collection.insertOne(doc as never);
          this.noteHead(conversation, n);
          return n;
        } catch (err) {
          if ((err as { code?: number }).code !== 11000 || attempt >= 50) throw err;
          this.noteHead(conversation, n); // another instance took it: the next one
        }
      }
    });
  }

  /** Entries `from..to` (at most `limit`), oldest first; missing numbers are skipped. */
  async range(conversation: string, from: number, to: number, limit: number): Promise<UpdateDoc[]> {
    from = Math.max(1, from);
    to = Math.min(to, from + limit - 1);
    if (to < from) return [];
    const docs = await this.strategy.range(this.model, keysOf(conversation), from, to, limit);
    return docs.sort((a, b) => a.n - b.n);
  }

  drain(timeoutMs: number): Promise<void> {
    return this.queue.drain(timeoutMs);
  }
}
