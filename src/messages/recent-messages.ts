/**
 * The newest messages of active conversations, in memory: `messages(last: n)`, short replays
 * and gap fills are served from here with no database command.
 *
 * Per conversation a contiguous run of sequence numbers (at most `perConversation`), fed by
 * this instance's own inserts, by the message events it receives and by the newest pages it
 * reads. Whether the run is still the newest is not trusted: readers ask the database for the
 * head (one `_id` lookup) and read only what lies beyond the run. The one field that changes
 * after a message is stored, `readAt`, is updated by the `read` events of the conversation,
 * which the cache subscribes to (on every instance) while it holds a direct conversation.
 */
import type { LRUCache } from 'lru-cache';
import { lru } from '../util/lru';
import type { MessageDoc } from './message.model';

/** A `read` event as the cache needs it: everything `reader` received up to `upToSeq` was read at `at`. */
export interface ReadEvent {
  readerId: string;
  upToSeq: number;
  at: Date;
}

/** Subscribes to a conversation's read events; resolves (once live) to the unsubscribe function. */
export type WatchReads = (conversation: string, apply: (event: ReadEvent) => void) => Promise<() => void>;

interface Run {
  first: number;
  docs: MessageDoc[];
  /** Update number (lifecycle) of the state held, by seq: an older state arriving late is ignored. */
  versions?: Map<number, number>;
  /** False until the read-event subscription is live (direct conversations): not served before. */
  ready: boolean;
  stop?: () => void;
  closed?: boolean;
}

export interface RecentMessagesOptions {
  /** Conversations held. Default 2000. */
  conversations?: number;
  /** Newest messages held per conversation. Default 100 (the largest page). */
  perConversation?: number;
  /** Needed for conversations whose messages can be marked read (direct ones). */
  watchReads?: WatchReads;
}

export class RecentMessages {
  private readonly runs: LRUCache<string, Run>;
  private readonly cap: number;

  constructor(private readonly options: RecentMessagesOptions = {}) {
    this.cap = options.perConversation ?? 100;
    this.runs = lru(options.conversations ?? 2000, {
      dispose: (run) => {
        run.closed = true;
        run.stop?.();
      },
    });
  }

  /** Messages `from..to` (inclusive, oldest first) when all are held; else undefined. */
  slice(conversation: string, from: number, to: number): MessageDoc[] | undefined {
    const run = this.runs.get(conversation);
    if (!run?.ready || from < run.first || to > run.first + run.docs.length - 1) return undefined;
    return run.docs.slice(from - run.first, to - run.first + 1);
  }

  get(conversation: string, seq: number): MessageDoc | undefined {
    return this.slice(conversation, seq, seq)?.[0];
  }

  /** The held state of one message, also before its run may serve pages (to compare states, not to serve). */
  peek(conversation: string, seq: number): MessageDoc | undefined {
    const run = this.runs.peek(conversation);
    const i = run ? seq - run.first : -1;
    return run && i >= 0 && i < run.docs.length ? run.docs[i] : undefined;
  }

  /**
   * The held part of `from..to` when the run holds `to` and starts after `from`: the newest
   * messages of a range, so that only the older ones are read from the database (a replay
   * after a restart: the run starts at the first message this instance stored or received).
   */
  heldTail(conversation: string, from: number, to: number): MessageDoc[] | undefined {
    const run = this.runs.get(conversation);
    if (!run?.ready || run.docs.length === 0) return undefined;
    if (to < run.first || to > run.first + run.docs.length - 1 || from >= run.first) return undefined;
    return run.docs.slice(0, to - run.first + 1);
  }

  /**
   * Stored messages with consecutive numbers just before the run (the last is `first - 1`):
   * held too, as far as the run has room, so the next replay of them needs no read. Not for
   * direct conversations: a read event may have passed while they were read, and their
   * `readAt` would stay stale.
   */
  prepend(conversation: string, docs: readonly MessageDoc[]): void {
    if (conversation.startsWith('dm:')) return;
    const run = this.runs.peek(conversation);
    if (!run?.ready || docs.length === 0 || docs[docs.length - 1].seq !== run.first - 1) return;
    // (A full run has no room: `slice(-0)` would be every document.)
    const room = this.cap - run.docs.length;
    if (room <= 0) return;
    const add = docs.slice(-room);
    for (let i = 1; i < add.length; i++) if (add[i].seq !== add[i - 1].seq + 1) return;
    run.docs = [...add, ...run.docs];
    run.first = add[0].seq;
  }

  /** A stored message (own insert or an event): extends the run when it is the next number. */
  add(doc: MessageDoc): void {
    this.addRun(doc.conversation, [doc], true);
  }

  /**
   * Stored messages with consecutive numbers, oldest first. They extend or start the run when
   * they are newer than it (`startNew`: also when not adjacent, i.e. they are known to be the
   * newest); older ones are ignored.
   */
  addRun(conversation: string, docs: readonly MessageDoc[], startNew: boolean): void {
    if (docs.length === 0) return;
    let run = this.runs.get(conversation);
    const lastOf = (r: Run) => r.first + r.docs.length - 1;
    if (run && docs[0].seq > lastOf(run) + 1) {
      if (!startNew) return;
      run.first = docs[0].seq;
      run.docs = [];
      run.versions = undefined;
    }
    if (!run) {
      if (!startNew) return;
      run = { first: docs[0].seq, docs: [], ready: false };
      this.runs.set(conversation, run);
      this.watch(conversation, run);
    }
    for (const doc of docs) {
      if (doc.seq === lastOf(run) + 1) run.docs.push(doc);
    }
    if (run.docs.length > this.cap) {
      const drop = run.docs.length - this.cap;
      run.docs.splice(0, drop);
      run.first += drop;
      if (run.versions) for (const seq of run.versions.keys()) if (seq < run.first) run.versions.delete(seq);
    }
  }

  /**
   * A held message changed (edit, deletion, reactions, a moderation hide): hold its new state.
   * `n`, its update number, orders states published by several instances: two recounts of
   * one message's reactions may publish in the opposite order of their numbers, and the cache
   * must end with the later state, as the database does.
   */
  replace(doc: MessageDoc, n?: number): void {
    const run = this.runs.peek(doc.conversation);
    const i = run ? doc.seq - run.first : -1;
    if (!run || i < 0 || i >= run.docs.length) return;
    if (n !== undefined) {
      const held = run.versions?.get(doc.seq);
      if (held !== undefined && held > n) return;
      (run.versions ??= new Map()).set(doc.seq, n);
    }
    run.docs[i] = doc;
  }

  /** Applies a read event to the held messages. */
  private applyRead(run: Run, { readerId, upToSeq, at }: ReadEvent): void {
    run.docs = run.docs.map((d) =>
      d.seq <= upToSeq && d.readAt === null && d.recipient === readerId ? { ...d, readAt: at } : d,
    );
  }

  private watch(conversation: string, run: Run): void {
    if (!conversation.startsWith('dm:')) {
      run.ready = true;
      return;
    }
    const watchReads = this.options.watchReads;
    if (!watchReads) return; // never served: readAt could not be kept current
    watchReads(conversation, (event) => this.applyRead(run, event)).then(
      (stop) => {
        if (run.closed) return stop();
        run.stop = stop;
        // What was held before the subscription was live may have missed a read event.
        run.docs = [];
        run.ready = true;
      },
      () => {
        // Not subscribed: this conversation is read from the database.
        if (this.runs.get(conversation) === run) this.runs.delete(conversation);
      },
    );
  }

  /** Applies a read made through this instance at once (its event arrives a moment later). */
  noteRead(conversation: string, event: ReadEvent): void {
    const run = this.runs.peek(conversation);
    if (run) this.applyRead(run, event);
  }

  /** Unsubscribes everything (server shutdown). */
  clear(): void {
    this.runs.clear();
  }
}
