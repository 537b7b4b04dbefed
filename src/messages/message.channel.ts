/**
 * The ordered channel of one conversation's messages (`messageAdded`): every subscriber
 * receives every message once, in sequence order, with no gap, across reconnects (replay with
 * `after`), concurrent senders and several instances. The ordering gate, gap fill and
 * replay-then-live hand-over are realtime/ordered-channel.ts's; this file says how to read a
 * conversation's messages and who may receive one (abuse control's audience).
 */
import type { ChannelKind } from '../realtime/engine';
import type { ChannelTools } from '../realtime/fanout';
import { ORDERED_BATCH, OrderedChannel } from '../realtime/ordered-channel';
import { messageTopic, type MessagePayload } from './message.events';
import type { MessageDoc } from './message.model';
import type { MessagePolicy } from './message.policy';
import type { MessageService } from './message.service';
import type { MessageStore } from './message.store';

/** Messages read per database round trip while replaying. */
export const REPLAY_BATCH = ORDERED_BATCH;

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

export class MessageChannel extends OrderedChannel<MessagePayload, MessageRoute> {
  constructor(
    topic: string,
    readonly conversation: string,
    tools: ChannelTools,
    private readonly deps: MessageChannelDeps,
  ) {
    // Replays are cached: a numbered message's rendering only changes through messageUpdated.
    super(topic, tools, { noun: 'message', cacheReplays: true });
  }

  protected seqOf(payload: MessagePayload): number {
    return payload.message.seq;
  }

  protected head(): Promise<number> {
    return this.deps.store.head(this.conversation);
  }

  protected async read(from: number, to: number, limit: number) {
    const docs = await this.deps.store.range(this.conversation, from, to, limit);
    // Expired messages are read (they hold their number) but not delivered.
    const events = await this.deps.toPayloads(docs);
    return { events, through: docs.length > 0 ? docs[docs.length - 1].seq : to };
  }

  protected override deliveries(payload: MessagePayload) {
    // Usually undefined: every group executes once and writes to all of its sinks.
    const may = this.deps.audience?.(payload);
    return may && [{ payload, to: may }];
  }

  protected override noteEvent(payload: MessagePayload): void {
    this.deps.store.noteStored(payload.message);
  }

  protected override eventTime(payload: MessagePayload): Date {
    return payload.message.createdAt;
  }
}
