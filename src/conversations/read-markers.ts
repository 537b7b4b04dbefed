/**
 * Read markers of active direct conversations, in memory: the `conversationUpdated` push of
 * every direct message needs both participants' markers (for unreadCount), and reading them
 * from the database made two of a DM send's commands.
 *
 * A marker moves only in `markRead`, which publishes the conversation's `read` event with
 * the new position (on every instance, through pub/sub). The cache subscribes to the `read`
 * topic of each conversation it holds before it reads a marker from the database, and keeps
 * whichever of the two is further along, so an event that overtakes the read is never
 * undone by it. Markers only move forward, so "further along" is the higher `seq`.
 * Conversations are held in an LRU; evicting one ends its subscription.
 */
import type { LRUCache } from 'lru-cache';
import { lru } from '../util/lru';

export interface Marker {
  /** Highest sequence number marked read. */
  seq: number;
  /** The other user's message count at `seq`. */
  count: number;
}

/** A marker moved: `reader`'s marker of `conversation` is now `marker`. */
export type MarkerListener = (readerId: string, marker: Marker) => void;

export interface ReadMarkerCacheOptions {
  /** Reads a marker from the database (null: none yet). */
  load(readerId: string, conversation: string): Promise<Marker | null>;
  /** Subscribes to a conversation's marker moves; resolves (once live) to the unsubscribe function. */
  watch(conversation: string, apply: MarkerListener): Promise<() => void>;
  /** Conversations held. Default 10000. */
  conversations?: number;
}

interface Held {
  markers: Map<string, Marker | null>;
  loading: Map<string, Promise<Marker | null>>;
  ready: Promise<void>;
  stop?: () => void;
  /** When its marker moves began to be heard (Date.now()). */
  liveAt?: number;
  closed: boolean;
}

function further(a: Marker | null | undefined, b: Marker | null | undefined): Marker | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return b.seq > a.seq ? b : a;
}

export class ReadMarkerCache {
  private readonly held: LRUCache<string, Held>;

  constructor(private readonly options: ReadMarkerCacheOptions) {
    this.held = lru<string, Held>(options.conversations ?? 10000, {
      dispose: (h) => {
        h.closed = true;
        h.stop?.();
      },
    });
  }

  /** `readerId`'s marker of `conversation`: from memory when held, else read once and kept. */
  async get(readerId: string, conversation: string): Promise<Marker | null> {
    const held = this.hold(conversation);
    await held.ready;
    if (held.markers.has(readerId)) return held.markers.get(readerId)!;
    let loading = held.loading.get(readerId);
    if (!loading) {
      loading = this.options.load(readerId, conversation).finally(() => held.loading.delete(readerId));
      held.loading.set(readerId, loading);
    }
    const loaded = await loading;
    // An event may have moved the marker while it was read: keep the further one.
    const marker = further(held.markers.get(readerId), loaded);
    if (!held.closed) held.markers.set(readerId, marker);
    return marker;
  }

  /** This instance moved a marker (its own `read` event will say the same). */
  note(readerId: string, conversation: string, marker: Marker): void {
    const held = this.held.peek(conversation);
    if (held) held.markers.set(readerId, further(held.markers.get(readerId), marker));
  }

  /** Resolves once the conversation is held and its marker moves are being heard. */
  async watch(conversation: string): Promise<void> {
    await this.hold(conversation).ready;
  }

  /**
   * Records that `readers` have no marker in `conversation`, without reading the database.
   * Only for a conversation seen empty after {@link watch} resolved: a marker needs a stored
   * message, so any marker set after that moment arrives as an event. With `emptyAt`, nothing
   * is seeded unless the marker moves were heard from before that time.
   */
  seedEmpty(conversation: string, readers: readonly string[], emptyAt?: number): void {
    const held = this.held.peek(conversation);
    if (!held || held.closed) return;
    // `emptyAt`: when the conversation was last known empty; only if heard since before it.
    if (emptyAt !== undefined && !(held.liveAt !== undefined && held.liveAt < emptyAt)) return;
    for (const r of readers) if (!held.markers.has(r) && !held.loading.has(r)) held.markers.set(r, null);
  }

  /** Conversations held (tests, metrics). */
  get size(): number {
    return this.held.size;
  }

  private hold(conversation: string): Held {
    let held = this.held.get(conversation);
    if (held) return held;
    const h: Held = { markers: new Map(), loading: new Map(), ready: Promise.resolve(), closed: false };
    h.ready = this.options
      .watch(conversation, (readerId, marker) => {
        if (!h.closed) h.markers.set(readerId, further(h.markers.get(readerId), marker));
      })
      .then(
        (stop) => {
          if (h.closed) stop();
          else {
            h.stop = stop;
            h.liveAt = Date.now();
          }
        },
        (err: unknown) => {
          // Not watched, so not trusted: the next caller tries again.
          if (this.held.peek(conversation) === h) this.held.delete(conversation);
          throw err;
        },
      );
    this.held.set(conversation, h);
    held = h;
    return held;
  }
}
