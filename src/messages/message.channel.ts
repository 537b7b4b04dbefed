/**
 * The ordered channel of one conversation: every subscriber receives every message once,
 * in sequence order, with no gap, across reconnects (replay with `after`), concurrent
 * senders and several instances.
 *
 * - Events can arrive out of order or not at all (two instances, a lost Redis message).
 *   Because sequence numbers have no gaps and a number is stored only after the previous
 *   one, an event that jumps ahead means the missing ones are already in the database:
 *   they are read and delivered first.
 * - A subscriber with `after` is replayed from the database, then joins the live group in
 *   the channel's own queue, so no event can slip between the end of its replay and the
 *   start of its live delivery. Sink.sendSeq drops anything at or below what the subscriber
 *   already has, so replay and live can never duplicate.
 */
import type { LRUCache } from 'lru-cache';
import { lru } from '../util/lru';
import { BadUserInputError } from '../errors';
import type { ChannelKind } from '../realtime/engine';
import { Channel, toPayload, type ChannelTools, type Payload, type Sink } from '../realtime/fanout';
import { messageTopic, type MessagePayload } from './message.events';
import type { MessageDoc } from './message.model';
import type { MessagePolicy } from './message.policy';
import type { MessageService } from './message.service';
import type { MessageStore } from './message.store';

/** Messages read per database round trip while replaying. */
export const REPLAY_BATCH = 100;
const RETRY_MS = 500;

export interface MessageChannelDeps {
  store: Pick<MessageStore, 'head' | 'range' | 'noteStored'>;
  /** Attaches sender and recipient to stored messages. */
  toPayloads(docs: MessageDoc[]): Promise<MessagePayload[]>;
  /** Abuse control: who may receive a message (blocks, shadow bans, hidden by reports). Default everyone. */
  audience?: MessagePolicy['audience'];
}

/** What a `messageAdded` subscription attaches with. */
export interface MessageRoute {
  conversation: string;
  /** Replay every message after this sequence number first. */
  after?: number;
}

/** The `messages` channel kind: `messageAdded(with, after)`. */
export function messageChannelKind(
  messages: Pick<MessageService, 'resolveConversation' | 'resolveAfter' | 'admitReplay'>,
  deps: MessageChannelDeps,
): ChannelKind<`message:${string}`, MessageRoute> {
  return {
    name: 'messages',
    async route(viewerId, args, subscriber) {
      const { key } = await messages.resolveConversation({ id: viewerId }, args);
      const after = args.after != null ? messages.resolveAfter(key, args.after as string) : undefined;
      // Before the subscription starts, so a refusal is an ordinary GraphQL error.
      if (after !== undefined) await messages.admitReplay(subscriber.socket, key, after);
      return { topic: messageTopic(key), options: { conversation: key, after } };
    },
    createChannel: (route, tools) => new MessageChannel(route.topic, route.options.conversation, tools, deps),
  };
}

export class MessageChannel extends Channel<MessagePayload, MessageRoute> {
  /** Highest sequence number dispatched to live subscribers. */
  lastSeq = 0;
  /** Events received ahead of a gap that could not be filled yet (database away). */
  private readonly pending = new Map<number, MessagePayload>();
  private retryTimer?: NodeJS.Timeout;
  /** Rendered replay payloads, shared by subscribers catching up over the same messages. */
  // Made on the first replay: lru-cache preallocates for `max` (about 80 KiB), which every
  // channel of a quiet room would otherwise pay (see docs/ROOMS.md).
  private renderedCache?: LRUCache<string, Payload>;
  private get rendered(): LRUCache<string, Payload> {
    return (this.renderedCache ??= lru<string, Payload>(2000));
  }

  constructor(
    topic: string,
    readonly conversation: string,
    tools: ChannelTools,
    private readonly deps: MessageChannelDeps,
  ) {
    super(topic, tools);
  }

  /** Called once the pub/sub subscription is live: anything newer than the head will arrive as an event. */
  override async start(): Promise<void> {
    await this.enqueue(async () => {
      this.lastSeq = await this.deps.store.head(this.conversation);
    });
  }

  protected override eventTime(payload: MessagePayload): Date {
    return payload.message.createdAt;
  }

  override onEvent(payload: MessagePayload): void {
    this.deps.store.noteStored(payload.message);
    if (payload.message.seq > this.lastSeq) this.pending.set(payload.message.seq, payload);
    void this.enqueue(() => this.flush());
  }

  /** Delivers everything after lastSeq up to the newest pending event, reading gaps from the database. */
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
        const upTo = Math.min(target, this.lastSeq + REPLAY_BATCH);
        const docs = await this.deps.store.range(this.conversation, next, upTo, upTo - this.lastSeq);
        const payloads = await this.deps.toPayloads(docs);
        for (const p of payloads) await this.deliver(this.pending.get(p.message.seq) ?? p);
        // Numbers the database does not have (should not happen: they have no gaps) are skipped.
        if (this.lastSeq < upTo && !this.pending.has(this.lastSeq + 1)) this.lastSeq = Math.max(this.lastSeq, upTo);
      }
    } catch (err) {
      // The database is away: keep the events and try again; nothing is skipped.
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

  private async deliver(payload: MessagePayload): Promise<void> {
    const seq = payload.message.seq;
    if (seq <= this.lastSeq) return;
    // Usually undefined: then every group executes once and writes to all of its sinks.
    const may = this.deps.audience?.(payload);
    await this.dispatch(payload, may && ((sink: Sink) => may(sink.viewerId)), seq);
    this.lastSeq = seq;
    for (const k of this.pending.keys()) if (k <= seq) this.pending.delete(k);
  }

  /**
   * Adds a subscriber. Without `after` it receives messages newer than the conversation's
   * newest at this moment; with `after` it first receives every message after that one.
   */
  override async attach(sink: Sink, { after }: MessageRoute): Promise<void> {
    if (after === undefined) {
      await this.enqueue(() => {
        sink.lastSeq = this.lastSeq;
        this.join(sink);
        return Promise.resolve();
      });
      return;
    }
    if (after > this.lastSeq) {
      const head = await this.deps.store.head(this.conversation);
      if (after > head) throw new BadUserInputError('after is newer than the newest message', 'after');
    }
    sink.lastSeq = after;
    // Catch up in bulk outside the queue, so a long replay does not hold up live delivery
    // for everyone else; the last stretch and the join happen inside it. A subscriber whose
    // socket is closing gets nothing more: its replay stops at the next batch.
    while (sink.live && this.lastSeq - sink.lastSeq > REPLAY_BATCH) await this.replay(sink, this.lastSeq);
    await this.enqueue(async () => {
      while (sink.live && sink.lastSeq < this.lastSeq) await this.replay(sink, this.lastSeq);
      if (!sink.ended) this.join(sink);
    });
  }

  private async replay(sink: Sink, upTo: number): Promise<void> {
    const docs = await this.deps.store.range(this.conversation, sink.lastSeq + 1, upTo, REPLAY_BATCH);
    if (docs.length === 0) {
      sink.lastSeq = upTo;
      return;
    }
    for (const p of await this.deps.toPayloads(docs)) {
      const may = this.deps.audience?.(p);
      if (may && !may(sink.viewerId)) continue;
      if (sink.plan.perSubscriber) {
        sink.sendEvent(p, p.message.seq);
        continue;
      }
      const key = sink.plan.viewerDependent ? undefined : `${sink.plan.key}\u0000${p.message.seq}`;
      let payload = key ? this.rendered.get(key) : undefined;
      if (payload === undefined) {
        payload = toPayload(
          await this.render(sink.plan, p, sink.plan.viewerDependent ? sink.subscriber.contextValue : undefined),
        );
        if (key) this.rendered.set(key, payload);
      }
      sink.sendSeq(p.message.seq, payload);
    }
    if (sink.lastSeq < docs[docs.length - 1].seq) sink.lastSeq = docs[docs.length - 1].seq;
  }

  override endAll(error?: unknown): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    super.endAll(error);
  }
}
