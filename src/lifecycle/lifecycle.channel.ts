/**
 * The `messageUpdates` channel kind: `messageUpdated(with, room, after)`. The same ordered
 * channel as the messages' (realtime/ordered-channel.ts) over the conversation's update
 * sequence: every subscriber receives each change once and in order, across instances and
 * reconnects. What differs is the reading: a stretch of the update log delivers each changed
 * message once, at its last number in the stretch, in its current state; a number whose
 * message has since expired (or changed again later) is skipped.
 */
import type { ChannelKind } from '../realtime/engine';
import type { ChannelTools } from '../realtime/fanout';
import { OrderedChannel } from '../realtime/ordered-channel';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc } from '../messages/message.model';
import type { UpdateDelivery } from '../messages/message.policy';
import type { MessageService } from '../messages/message.service';
import type { MessageStore } from '../messages/message.store';
import { conversationOf } from './conversation-of';
import { updateTopic, type UpdatePayload } from './lifecycle.events';
import type { LifecycleService } from './lifecycle.service';
import { decodeUpdateCursor, type UpdateLog } from './update-log';

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

export class UpdateChannel extends OrderedChannel<UpdatePayload, UpdateRoute> {
  constructor(
    topic: string,
    readonly conversation: string,
    tools: ChannelTools,
    private readonly deps: UpdateChannelDeps,
  ) {
    // Not cached: a replayed number shows its message as it is now, which later changes alter.
    super(topic, tools, { noun: 'update' });
  }

  protected seqOf(payload: UpdatePayload): number {
    return payload.n;
  }

  protected head(): Promise<number> {
    return this.deps.log.head(this.conversation);
  }

  /** Abuse control: who receives a change, and as what (blocked, shadow, hidden: redacted for all but the sender). */
  protected override deliveries(payload: UpdatePayload) {
    return this.deps.audience?.(payload);
  }

  protected override noteEvent(payload: UpdatePayload): void {
    this.deps.log.noteHead(this.conversation, payload.n);
  }

  /** Payloads of log entries `from..to`, each changed message once (at its last number), as it is now. */
  protected async read(from: number, to: number, limit: number) {
    const through = Math.min(to, from + limit - 1);
    const entries = await this.deps.log.range(this.conversation, from, through, limit);
    const lastOf = new Map<string, number>();
    for (const e of entries) lastOf.set(e.message, e.n);
    const docs = await Promise.all([...lastOf.keys()].map((id) => this.deps.store.get(id)));
    const visible = docs.filter((d): d is MessageDoc => d !== null && this.deps.expiry.isVisible(d));
    const payloads = await Promise.all(
      visible.map(async (d) => ({ ...(await this.deps.lifecycle.payload(d)), n: lastOf.get(d._id)! })),
    );
    return { events: payloads.sort((a, b) => a.n - b.n), through };
  }
}
