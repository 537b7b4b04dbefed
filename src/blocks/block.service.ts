/**
 * Blocking: after A blocks B, B's direct messages to A are refused and A no longer sees B's
 * messages or typing anywhere (see docs/MODERATION.md).
 *
 * The fan-out needs a synchronous answer per event ("who here blocks this sender?"), so each
 * instance keeps the blocked sets of the viewers connected to it in memory (retained while
 * they have a WebSocket here) plus a reverse index, blocked user → viewers here who block
 * them. For the usual sender nobody blocks, the index has no entry and the grouped fan-out
 * runs exactly as before; only the sinks of viewers who block the sender are skipped.
 * Changes travel to every instance on one pub/sub topic, carrying the log position so an
 * instance that missed one reloads instead of drifting.
 */
import { lru } from '../util/lru';
import type { StorageStrategy } from '../db/strategy';
import { BadUserInputError } from '../errors';
import type { PubSub } from '../realtime/pubsub';
import { KeyedQueue } from '../util/keyed-queue';
import { seqId } from '../db/strategy';
import { BLOCKS_TOPIC, type BlockChange } from './block.events';
import { blockLogKeys, type BlockLogDoc, type BlockLogModel } from './block.model';

/** Users one person may block at once. */
export const MAX_BLOCKED = 1000;
/** Block and unblock actions one person may take in all (the log is replayed on load). */
export const MAX_BLOCK_LOG = 5000;

const EMPTY: ReadonlySet<string> = new Set();

/** The blocked set of one viewer on this instance. */
class Entry {
  refs = 0;
  /** Log entries applied (the set reflects entries 1..head). */
  head = 0;
  set?: Set<string>;
  ready!: Promise<void>;
  /** Changes that arrived while loading, applied after it. */
  pending: Array<BlockChange & { n: number }> = [];
}

export type BlockChangeEvent = BlockChange & { n: number };

export class BlockService {
  /** Viewers with a WebSocket on this instance. */
  private readonly retained = new Map<string, Entry>();
  /** Other viewers read recently (history over HTTP, direct-message checks). */
  private readonly recent = lru<string, Entry>(20000);
  /** Blocked user → retained viewers here who block them. */
  private readonly blockersIndex = new Map<string, Set<string>>();
  private readonly queue = new KeyedQueue();
  private unsubscribe?: () => void;

  constructor(
    private readonly log: BlockLogModel,
    private readonly pubsub: PubSub,
    private readonly strategy: StorageStrategy,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.pubsub.subscribe(BLOCKS_TOPIC, (c) => this.onChange(c as BlockChangeEvent));
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /**
   * `viewer` was just created on this instance: their log is empty, so it is held as loaded
   * (empty, at entry 0) instead of being read on the first direct message to them. Kept
   * current like any loaded set: their blocks arrive on BLOCKS_TOPIC, numbered, so a missed
   * one is noticed and read (see apply).
   */
  created(viewer: string): void {
    if (this.retained.has(viewer) || this.recent.has(viewer)) return;
    const entry = new Entry();
    entry.set = new Set();
    entry.ready = Promise.resolve();
    this.recent.set(viewer, entry);
  }

  /** Keeps `viewer`'s set loaded while they have a connection here (call once per connection). */
  retain(viewer: string): void {
    let entry = this.retained.get(viewer);
    if (!entry) {
      entry = this.recent.get(viewer) ?? this.load(viewer);
      this.recent.delete(viewer);
      this.retained.set(viewer, entry);
      const e = entry;
      void e.ready.then(
        () => {
          if (this.retained.get(viewer) === e) this.index(viewer, e.set!, true);
        },
        () => undefined,
      );
    }
    entry.refs++;
  }

  /** The connection ended; the set is dropped with the viewer's last connection here. */
  release(viewer: string): void {
    const entry = this.retained.get(viewer);
    if (!entry || --entry.refs > 0) return;
    this.retained.delete(viewer);
    if (entry.set) this.index(viewer, entry.set, false);
  }

  /** The retained viewers here who block `sender`: undefined (nobody) for almost every sender. */
  blockersOf(sender: string): ReadonlySet<string> | undefined {
    return this.blockersIndex.get(sender);
  }

  /** Everyone `viewer` blocks. */
  /**
   * deleteMyData: the blocks the user made (their log). Blocks of the user by others are the
   * others' and stay; they name an id that no longer leads anywhere.
   */
  async eraseBlocker(userId: string): Promise<void> {
    await this.log.deleteMany({ blocker: userId }).exec();
    this.retained.delete(userId);
    this.recent.delete(userId);
  }

  async blockedBy(viewer: string): Promise<ReadonlySet<string>> {
    const entry = this.entry(viewer);
    await entry.ready;
    return entry.set ?? EMPTY;
  }

  /** Whether `a` blocks `b`. */
  async blocks(a: string, b: string): Promise<boolean> {
    return (await this.blockedBy(a)).has(b);
  }

  /** Whether either of two users blocks the other (stranger pairing). */
  async eitherBlocks(a: string, b: string): Promise<boolean> {
    return (await this.blocks(a, b)) || (await this.blocks(b, a));
  }

  /** Blocks or unblocks; a repeat is a no-op. Returns true. */
  async set(blocker: string, blocked: string, on: boolean): Promise<boolean> {
    if (blocker === blocked) throw new BadUserInputError('You cannot block yourself', 'id');
    return this.queue.run(blocker, async () => {
      const entry = this.entry(blocker);
      await entry.ready;
      if (entry.set!.has(blocked) === on) return true;
      if (on && entry.set!.size >= MAX_BLOCKED) {
        throw new BadUserInputError(`You can block at most ${MAX_BLOCKED} users; unblock someone first`, 'id');
      }
      for (let attempt = 0; ; attempt++) {
        const n = entry.head + 1;
        if (n > MAX_BLOCK_LOG) throw new BadUserInputError('Too many block and unblock actions', 'id');
        const doc: BlockLogDoc = { _id: seqId(blockLogKeys(blocker), n), blocker, blocked, on, at: new Date() };
        if (!(await this.strategy.insertUnique(this.log, doc))) {
          if (attempt >= 20) throw new Error(`block log of ${blocker}: could not claim an entry`);
          // Another instance appended first: catch up with the log, then decide again.
          await this.catchUp(blocker, entry);
          if (entry.set!.has(blocked) === on) return true;
          continue;
        }
        const change: BlockChangeEvent = { blocker, blocked, on, n };
        this.apply(blocker, entry, change);
        this.pubsub.publish(BLOCKS_TOPIC, change).catch(() => {
          // Other instances pick the change up when they next load this viewer.
        });
        return true;
      }
    });
  }

  private entry(viewer: string): Entry {
    const entry = this.retained.get(viewer) ?? this.recent.get(viewer);
    if (entry) return entry;
    const created = this.load(viewer);
    this.recent.set(viewer, created);
    return created;
  }

  private load(viewer: string): Entry {
    const entry = new Entry();
    entry.ready = this.catchUp(viewer, entry).catch((err: unknown) => {
      // A failed load is not cached: the next read tries again.
      if (this.recent.get(viewer) === entry) this.recent.delete(viewer);
      throw err;
    });
    return entry;
  }

  /** Reads log entries after `entry.head` and applies them, then anything that arrived meanwhile. */
  private async catchUp(viewer: string, entry: Entry): Promise<void> {
    const keys = blockLogKeys(viewer);
    const head = await this.strategy.head(this.log, keys, entry.head);
    const docs =
      head > entry.head
        ? await this.strategy.range<BlockLogDoc>(this.log, keys, entry.head + 1, head, MAX_BLOCK_LOG)
        : [];
    const set = entry.set ?? new Set<string>();
    const before = new Set(set);
    for (const d of docs) {
      if (d.on) set.add(d.blocked);
      else set.delete(d.blocked);
    }
    entry.set = set;
    entry.head = Math.max(entry.head, head);
    if (this.retained.get(viewer) === entry) this.reindex(viewer, before, set);
    const pending = entry.pending;
    entry.pending = [];
    for (const change of pending) this.apply(viewer, entry, change);
  }

  private onChange(change: BlockChangeEvent): void {
    const entry = this.retained.get(change.blocker) ?? this.recent.get(change.blocker);
    if (!entry) return;
    if (!entry.set) {
      entry.pending.push(change);
      return;
    }
    this.apply(change.blocker, entry, change);
  }

  private apply(viewer: string, entry: Entry, change: BlockChangeEvent): void {
    if (!entry.set) {
      entry.pending.push(change);
      return;
    }
    if (change.n <= entry.head) return;
    if (change.n > entry.head + 1) {
      // Missed one (a lost publication): read the log instead of guessing.
      void this.queue.run(viewer, () => this.catchUp(viewer, entry)).catch(() => undefined);
      return;
    }
    entry.head = change.n;
    if (change.on) entry.set.add(change.blocked);
    else entry.set.delete(change.blocked);
    if (this.retained.get(viewer) === entry) this.indexOne(viewer, change.blocked, change.on);
  }

  private reindex(viewer: string, before: ReadonlySet<string>, after: ReadonlySet<string>): void {
    for (const b of before) if (!after.has(b)) this.indexOne(viewer, b, false);
    for (const b of after) if (!before.has(b)) this.indexOne(viewer, b, true);
  }

  private index(viewer: string, set: ReadonlySet<string>, on: boolean): void {
    for (const b of set) this.indexOne(viewer, b, on);
  }

  private indexOne(viewer: string, blocked: string, on: boolean): void {
    let viewers = this.blockersIndex.get(blocked);
    if (on) {
      if (!viewers) this.blockersIndex.set(blocked, (viewers = new Set()));
      viewers.add(viewer);
    } else if (viewers) {
      viewers.delete(viewer);
      if (viewers.size === 0) this.blockersIndex.delete(blocked);
    }
  }
}
