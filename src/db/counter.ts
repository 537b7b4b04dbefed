/**
 * Exact counters with an upper bound, race-free across instances on FerretDB 1.x.
 *
 * FerretDB 1.x applies `$inc` as read-modify-write without isolation, so two instances
 * incrementing one document can lose an update, and a bound checked before the write can be
 * overrun. Instead each change of counter `key` is a document `<key>#<n>` (n = 1, 2, 3, ...
 * without gaps) holding the value after that change. A change claims the next number by
 * inserting it: of two concurrent writers exactly one wins the number (unique `_id`), the other
 * re-reads the newest value and tries again. The current value is the newest document's, found
 * with `_id` lookups only (gallopHead), so it is index-backed everywhere.
 */
import { lru } from '../util/lru';
import { Schema, type Connection, type Model } from 'mongoose';
import { KeyedQueue } from '../util/keyed-queue';
import { gallopHead } from './sequence';

export interface CounterDoc {
  _id: string;
  value: number;
  at: Date;
}

const counterSchema = new Schema<CounterDoc>(
  {
    _id: { type: String, required: true },
    value: { type: Number, required: true },
    at: { type: Date, required: true },
  },
  { collection: 'counters', versionKey: false },
);

export function counterModel(connection: Connection): Model<CounterDoc> {
  return (
    (connection.models.Counter as Model<CounterDoc> | undefined) ??
    connection.model<CounterDoc>('Counter', counterSchema)
  );
}

const docId = (key: string, n: number) => `${key}#${String(n).padStart(12, '0')}`;
const isDuplicateKey = (err: unknown) => (err as { code?: number })?.code === 11000;

export class ExactCounter {
  /** The newest change number seen per key: the head search starts there (one lookup when unchanged). */
  private readonly heads = lru<string, number>(100000);
  /** Changes of one key through this instance run one at a time, so they do not collide with each other. */
  private readonly queue = new KeyedQueue();

  constructor(private readonly model: Model<CounterDoc>) {}

  private async exists(key: string, n: number): Promise<boolean> {
    return (await this.model.exists({ _id: docId(key, n) }).exec()) !== null;
  }

  private async head(key: string): Promise<{ n: number; value: number }> {
    const n = await gallopHead(this.heads.get(key) ?? 0, (i) => this.exists(key, i));
    if (n > 0) this.heads.set(key, n);
    if (n === 0) return { n: 0, value: 0 };
    const doc = await this.model
      .findOne({ _id: docId(key, n) })
      .lean<CounterDoc>()
      .exec();
    return { n, value: doc?.value ?? 0 };
  }

  /** The counter's current value (0 for a counter never changed). */
  async value(key: string): Promise<number> {
    return (await this.head(key)).value;
  }

  /**
   * Removes every change of the counters whose key starts with `prefix` (deleteMyData: the
   * counters of an erased user). Only for keys nobody changes any more.
   */
  async eraseKeysStartingWith(prefix: string): Promise<void> {
    const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await this.model.deleteMany({ _id: { $regex: `^${escaped}` } }).exec();
    for (const key of [...this.heads.keys()])
      if (`${key}#`.startsWith(prefix) || key.startsWith(prefix)) this.heads.delete(key);
  }

  /**
   * Adds `delta` unless the result would exceed `max` (or drop below 0); returns the new value,
   * or null when refused. Exact under any number of concurrent writers on any instances.
   */
  add(key: string, delta: number, max = Number.MAX_SAFE_INTEGER): Promise<number | null> {
    return this.queue.run(key, async () => {
      for (let attempt = 0; ; attempt++) {
        const { n, value } = await this.head(key);
        const next = value + delta;
        if (next > max || next < 0) return null;
        try {
          await this.model.create({ _id: docId(key, n + 1), value: next, at: new Date() });
          this.heads.set(key, n + 1);
          return next;
        } catch (err) {
          // Another instance took this number: read its value and try again.
          if (!isDuplicateKey(err) || attempt >= 100) throw err;
          this.heads.set(key, n + 1);
        }
      }
    });
  }
}
