/**
 * A channel of numbered events: every subscriber receives every number once, in order, with
 * no gap, across reconnects (replay with `after`), concurrent publishers and several
 * instances. The messages of a conversation (`messageAdded`) and its update sequence
 * (`messageUpdated`) are both served by a subclass; it says only how to read its numbers.
 *
 * - Events can arrive out of order or not at all (two instances, a lost Redis message).
 *   Numbers have no gaps and a number is stored before it is published, so an event that
 *   jumps ahead means the missing ones are already stored: they are read and delivered first.
 *   A number the store does not have (expired, or delivered later at a newer number) is
 *   skipped, never waited for.
 * - A subscriber with `after` is replayed from the store, then joins the live group in the
 *   channel's own queue, so no event can slip between the end of its replay and the start of
 *   its live delivery. Sink.sendSeq drops anything at or below what the subscriber already
 *   has, so replay and live can never duplicate.
 * - When the store is away, events are kept and the gap fill is retried; nothing is skipped.
 *
 * Infrastructure: knows no domain.
 */
import type { LRUCache } from 'lru-cache';
import { BadUserInputError } from '../errors';
import { lru } from '../util/lru';
import { Channel, toPayload, type ChannelTools, type Payload, type SeqPayload, type Sink } from './fanout';

/** Events read per store round trip while replaying or filling a gap. */
export const ORDERED_BATCH = 100;
const RETRY_MS = 500;

/** What an ordered subscription attaches with. */
export interface OrderedRoute {
  /** Replay every event after this number first. */
  after?: number;
}

/** One rendering of an event and the viewers it is for (see OrderedChannel.deliveries). */
export interface Delivery<E> {
  payload: E;
  to(viewerId: string): boolean;
}

export interface OrderedChannelOptions {
  /** How an `after` beyond the newest number is named in the error ("message", "update"). */
  noun: string;
  /**
   * Cache rendered replay payloads by plan and number, shared by subscribers catching up over
   * the same events. Only for events that never change once numbered.
   */
  cacheReplays?: boolean;
}

export abstract class OrderedChannel<E, O extends OrderedRoute = OrderedRoute> extends Channel<E, O> {
  /** Highest number dispatched to live subscribers. */
  lastSeq = 0;
  /** Events received ahead of a gap that could not be filled yet. */
  private readonly pending = new Map<number, E>();
  private retryTimer?: NodeJS.Timeout;
  // Made on the first replay: lru-cache preallocates for `max` (about 80 KiB), which every
  // channel of a quiet room would otherwise pay (see docs/ROOMS.md).
  private renderedCache?: LRUCache<string, Payload>;
  private get rendered(): LRUCache<string, Payload> {
    return (this.renderedCache ??= lru<string, Payload>(2000));
  }

  constructor(
    topic: string,
    tools: ChannelTools,
    private readonly ordered: OrderedChannelOptions,
  ) {
    super(topic, tools);
  }

  /** The event's number. */
  protected abstract seqOf(event: E): number;
  /** The newest number stored now. */
  protected abstract head(): Promise<number>;
  /**
   * Stored events numbered `from..to` (at most `limit`), ascending; and `through`, the highest
   * number the read covered (later reads start after it).
   */
  protected abstract read(from: number, to: number, limit: number): Promise<{ events: E[]; through: number }>;
  /**
   * Who receives the event, and as what (e.g. blocked senders left out, a hidden message
   * redacted for all but its sender): each viewer gets the first delivery meant for them, and
   * nothing if none is. Undefined (the usual case): everyone gets the event itself.
   */
  protected deliveries(event: E): Array<Delivery<E>> | undefined {
    void event;
    return undefined;
  }
  /** Told of every event as it arrives, before ordering (e.g. to keep a cached head current). */
  protected noteEvent(event: E): void {
    void event;
  }

  /** Called once the pub/sub subscription is live: anything newer than the head will arrive as an event. */
  override async start(): Promise<void> {
    await this.enqueue(async () => {
      this.lastSeq = await this.head();
    });
  }

  override onEvent(event: E): void {
    this.noteEvent(event);
    const seq = this.seqOf(event);
    if (seq > this.lastSeq) this.pending.set(seq, event);
    void this.enqueue(() => this.flush());
  }

  /** Delivers everything after lastSeq up to the newest pending event, reading gaps from the store. */
  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const target = Math.max(...this.pending.keys());
    try {
      while (this.lastSeq < target && !this.closed) {
        const next = this.lastSeq + 1;
        const ready = this.pending.get(next);
        if (ready) {
          await this.deliver(ready);
          continue;
        }
        const upTo = Math.min(target, this.lastSeq + ORDERED_BATCH);
        const { events } = await this.read(next, upTo, upTo - this.lastSeq);
        for (const e of events) await this.deliver(this.pending.get(this.seqOf(e)) ?? e);
        // Numbers the store does not have (expired, or changed again later) are skipped.
        if (this.lastSeq < upTo && !this.pending.has(this.lastSeq + 1)) this.lastSeq = Math.max(this.lastSeq, upTo);
      }
    } catch (err) {
      // The store is away: keep the events and try again; nothing is skipped.
      this.onError(err);
      if (!this.retryTimer && !this.closed) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          void this.enqueue(() => this.flush());
        }, RETRY_MS);
        this.retryTimer.unref();
      }
    }
  }

  private async deliver(event: E): Promise<void> {
    const seq = this.seqOf(event);
    if (seq <= this.lastSeq) return;
    // Usually undefined: then every group executes once and writes to all of its sinks.
    const deliveries = this.deliveries(event);
    if (!deliveries) await this.dispatch(event, undefined, seq);
    // Sink.sendSeq never repeats a number: a viewer of two deliveries gets the first.
    else for (const d of deliveries) await this.dispatch(d.payload, (sink: Sink) => d.to(sink.viewerId), seq);
    this.lastSeq = seq;
    for (const k of this.pending.keys()) if (k <= seq) this.pending.delete(k);
  }

  /**
   * Adds a subscriber. Without `after` it receives events newer than the newest at this
   * moment; with `after` it first receives every event after that one.
   */
  override async attach(sink: Sink, { after }: O): Promise<void> {
    if (after === undefined) {
      await this.enqueue(() => {
        sink.lastSeq = this.lastSeq;
        this.join(sink);
        return Promise.resolve();
      });
      return;
    }
    if (after > this.lastSeq && after > (await this.head())) {
      throw new BadUserInputError(`after is newer than the newest ${this.ordered.noun}`, 'after');
    }
    sink.lastSeq = after;
    // Something to replay: wait for one of the bounded replay slots (replay-gate.ts; a
    // reconnect storm queues here). A subscriber that left while it waited gets no replay.
    const release = after < this.lastSeq ? await this.tools.replaySlot?.(() => sink.live) : undefined;
    try {
      // Catch up in bulk outside the queue, so a long replay does not hold up live delivery
      // for everyone else; the last stretch and the join happen inside it. A subscriber whose
      // socket is closing gets nothing more: its replay stops at the next batch.
      while (sink.live && this.lastSeq - sink.lastSeq > ORDERED_BATCH) await this.replay(sink, this.lastSeq);
      await this.enqueue(async () => {
        while (sink.live && sink.lastSeq < this.lastSeq) await this.replay(sink, this.lastSeq);
        if (!sink.ended) this.join(sink);
      });
    } finally {
      release?.();
    }
  }

  private async replay(sink: Sink, upTo: number): Promise<void> {
    const { events, through } = await this.read(sink.lastSeq + 1, upTo, ORDERED_BATCH);
    this.tools.onReplayPage?.(events.length);
    // The page's frames are rendered first (awaiting only payloads not cached yet), then
    // written together in one synchronous step: one socket write for the page, and nothing
    // of this subscription can come between its frames (it is not live until it joins).
    const frames: SeqPayload[] = [];
    for (const original of events) {
      const seq = this.seqOf(original);
      const deliveries = this.deliveries(original);
      const e = deliveries ? deliveries.find((d) => d.to(sink.viewerId))?.payload : original;
      if (e === undefined) continue;
      if (sink.plan.perSubscriber) {
        sink.sendEvent(e, seq);
        continue;
      }
      // Only the event as stored is shared between viewers; a delivery made for some is not.
      const shared = this.ordered.cacheReplays && e === original && !sink.plan.viewerDependent;
      const key = shared ? `${sink.plan.key}\u0000${seq}` : undefined;
      let payload = key ? this.rendered.get(key) : undefined;
      if (payload === undefined) {
        payload = toPayload(
          await this.render(sink.plan, e, sink.plan.viewerDependent ? sink.subscriber.contextValue : undefined),
        );
        if (key) this.rendered.set(key, payload);
      }
      frames.push({ seq, payload });
    }
    sink.sendSeqs(frames);
    if (sink.lastSeq < through) sink.lastSeq = through;
  }

  override endAll(error?: unknown): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    super.endAll(error);
  }
}
