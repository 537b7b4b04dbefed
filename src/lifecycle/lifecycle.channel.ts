/**
 * The `messageUpdates` channel kind: `messageUpdated(with, after)`. Like the messages channel
 * (src/messages/message.channel.ts), it delivers a conversation's changes to every subscriber
 * once and in the order of the update sequence, across instances and reconnects:
 *
 * - an event that jumps ahead of the last number delivered is held while the missing
 *   numbers are read from the update log (they are stored before they are published);
 * - a subscriber with `after` is replayed from the log (each changed message once, in its
 *   current state) and then joins the live group inside the channel's queue;
 * - a number whose message has since expired is skipped, never waited for.
 */
import type { ChannelKind } from '../realtime/engine';
import { Channel, toPayload, type ChannelTools, type Sink } from '../realtime/fanout';
import { BadUserInputError } from '../errors';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc } from '../messages/message.model';
import type { UpdateDelivery } from '../messages/message.policy';
import type { MessageService } from '../messages/message.service';
import type { MessageStore } from '../messages/message.store';
import { conversationOf } from './conversation-of';
import { updateTopic, type UpdatePayload } from './lifecycle.events';
import type { LifecycleService } from './lifecycle.service';
import { decodeUpdateCursor, type UpdateLog } from './update-log';

const BATCH = 100;
const RETRY_MS = 500;

export interface UpdateChannelDeps {
  log: Pick<UpdateLog, 'head' | 'range' | 'noteHead'>;
  store: Pick<MessageStore, 'get'>;
  expiry: MessageExpiry;
  lifecycle: Pick<LifecycleService, 'payload'>;
  /**
   * Abuse control: who receives a change, and as what (blocks, shadow bans, messages hidden
   * by reports: redacted for all but their sender). Default everyone, as it is.
   */
  audience?: (payload: UpdatePayload) => Array<UpdateDelivery<UpdatePayload>> | undefined;
}

export interface UpdateRoute {
  conversation: string;
  after?: number;
}

export function updateChannelKind(
  messages: Pick<MessageService, 'resolveConversation'>,
  deps: UpdateChannelDeps,
): ChannelKind<`message-updated:${string}`, UpdateRoute> {
  return {
    name: 'messageUpdates',
    async route(viewerId, args) {
      const { key } = await conversationOf(messages, { id: viewerId }, args);
      const after = args.after != null ? decodeUpdateCursor(args.after, 'after') : undefined;
      return { topic: updateTopic(key), options: { conversation: key, after } };
    },
    createChannel: (route, tools) => new UpdateChannel(route.topic, route.options.conversation, tools, deps),
  };
}

export class UpdateChannel extends Channel<UpdatePayload, UpdateRoute> {
  lastN = 0;
  private readonly pending = new Map<number, UpdatePayload>();
  private retryTimer?: NodeJS.Timeout;

  constructor(
    topic: string,
    readonly conversation: string,
    tools: ChannelTools,
    private readonly deps: UpdateChannelDeps,
  ) {
    super(topic, tools);
  }

  override async start(): Promise<void> {
    await this.enqueue(async () => {
      this.lastN = await this.deps.log.head(this.conversation);
    });
  }

  override onEvent(payload: UpdatePayload): void {
    this.deps.log.noteHead(this.conversation, payload.n);
    if (payload.n > this.lastN) this.pending.set(payload.n, payload);
    void this.enqueue(() => this.flush());
  }

  /** Payloads of log entries `from..to`, each changed message once (at its last number), as it is now. */
  private async read(from: number, to: number): Promise<UpdatePayload[]> {
    const entries = await this.deps.log.range(this.conversation, from, to, BATCH);
    const lastOf = new Map<string, number>();
    for (const e of entries) lastOf.set(e.message, e.n);
    const docs = await Promise.all([...lastOf.keys()].map((id) => this.deps.store.get(id)));
    const visible = docs.filter((d): d is MessageDoc => d !== null && this.deps.expiry.isVisible(d));
    const payloads = await Promise.all(
      visible.map(async (d) => ({ ...(await this.deps.lifecycle.payload(d)), n: lastOf.get(d._id)! })),
    );
    return payloads.sort((a, b) => a.n - b.n);
  }

  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const target = Math.max(...this.pending.keys());
    try {
      while (this.lastN < target && !this.closed) {
        const next = this.lastN + 1;
        const ready = this.pending.get(next);
        if (ready) {
          await this.deliver(ready);
          continue;
        }
        const upTo = Math.min(target, this.lastN + BATCH);
        for (const p of await this.read(next, upTo)) await this.deliver(this.pending.get(p.n) ?? p);
        // Numbers without a (visible) message: expired ones and re-changed ones delivered later.
        if (this.lastN < upTo && !this.pending.has(this.lastN + 1)) this.lastN = upTo;
      }
    } catch (err) {
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

  private async deliver(payload: UpdatePayload): Promise<void> {
    if (payload.n <= this.lastN) return;
    // Usually undefined: every group executes once and writes to all of its sinks.
    const deliveries = this.deps.audience?.(payload);
    if (!deliveries) await this.dispatch(payload, undefined, payload.n);
    else {
      // Each viewer gets the first payload meant for them (sendSeq never repeats a number).
      for (const d of deliveries) await this.dispatch(d.payload, (sink) => d.to(sink.viewerId), payload.n);
    }
    this.lastN = payload.n;
    for (const k of this.pending.keys()) if (k <= payload.n) this.pending.delete(k);
  }

  override async attach(sink: Sink, { after }: UpdateRoute): Promise<void> {
    if (after === undefined) {
      await this.enqueue(() => {
        sink.lastSeq = this.lastN;
        this.join(sink);
        return Promise.resolve();
      });
      return;
    }
    if (after > this.lastN && after > (await this.deps.log.head(this.conversation))) {
      throw new BadUserInputError('after is newer than the newest update', 'after');
    }
    sink.lastSeq = after;
    while (!sink.ended && this.lastN - sink.lastSeq > BATCH) await this.replay(sink, this.lastN);
    await this.enqueue(async () => {
      while (!sink.ended && sink.lastSeq < this.lastN) await this.replay(sink, this.lastN);
      if (!sink.ended) this.join(sink);
    });
  }

  private async replay(sink: Sink, upTo: number): Promise<void> {
    const to = Math.min(upTo, sink.lastSeq + BATCH);
    for (const original of await this.read(sink.lastSeq + 1, to)) {
      const deliveries = this.deps.audience?.(original);
      const p = deliveries ? deliveries.find((d) => d.to(sink.viewerId))?.payload : original;
      if (!p) continue;
      if (sink.plan.perSubscriber) {
        sink.sendEvent(p, p.n);
        continue;
      }
      const viewer = sink.plan.viewerDependent ? sink.subscriber.contextValue : undefined;
      sink.sendSeq(p.n, toPayload(await this.render(sink.plan, p, viewer)));
    }
    if (sink.lastSeq < to) sink.lastSeq = to;
  }

  override endAll(error?: unknown): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    super.endAll(error);
  }
}
