/**
 * The `typing` channel kind. Expiry runs here, on the subscribing side, so it does not matter
 * which instance received the setTyping calls (see typing.service.ts).
 */
import type { MessageService } from '../messages/message.service';
import type { ChannelKind } from '../realtime/engine';
import { Channel, type ChannelTools, type Sink } from '../realtime/fanout';
import type { UserRecord } from '../users/user.type';
import { typingTopic, type TypingPayload } from './typing.events';
import { TYPING_TTL_MS } from './typing.service';

/** Abuse control: the viewers who must not see `typist` (those who block them); usually undefined. */
export type TypingAudience = (typist: string) => ReadonlySet<string> | undefined;

/** `typing(with, room)`: the conversation's typing events, never the viewer's own. */
export function typingChannelKind(
  messages: Pick<MessageService, 'resolveConversation'>,
  hiddenFrom?: TypingAudience,
): ChannelKind<`typing:${string}`> {
  return {
    name: 'typing',
    async route(viewerId, args) {
      const { key } = await messages.resolveConversation({ id: viewerId }, args);
      return { topic: typingTopic(key), options: undefined };
    },
    createChannel: (route, tools) => new TypingChannel(route.topic, tools, TYPING_TTL_MS, hiddenFrom),
  };
}

/**
 * The subscribers of one conversation's typing on this instance: turns the published
 * stream (true, renewals, false) into exactly one `true` and one `false` per burst, and
 * expires stale `true`s. The typist never receives their own events.
 */
export class TypingChannel extends Channel<TypingPayload> {
  private readonly typists = new Map<string, { user: UserRecord; timer: NodeJS.Timeout }>();

  constructor(
    topic: string,
    tools: ChannelTools,
    private readonly ttlMs = TYPING_TTL_MS,
    private readonly hiddenFrom?: TypingAudience,
  ) {
    super(topic, tools);
  }

  override onEvent(p: TypingPayload): void {
    const current = this.typists.get(p.user.id);
    if (p.typing) {
      if (current) clearTimeout(current.timer);
      const timer = setTimeout(() => this.stop(p.user), this.ttlMs);
      timer.unref();
      this.typists.set(p.user.id, { user: p.user, timer });
      if (!current) this.emit(p);
    } else if (current) {
      this.stop(p.user);
    }
  }

  private stop(user: UserRecord): void {
    const current = this.typists.get(user.id);
    if (!current) return;
    clearTimeout(current.timer);
    this.typists.delete(user.id);
    this.emit({ conversation: '', user: current.user, typing: false });
  }

  private emit(p: TypingPayload): void {
    const hidden = this.hiddenFrom?.(p.user.id);
    void this.enqueue(() =>
      this.dispatch(p, (sink: Sink) => sink.viewerId !== p.user.id && !hidden?.has(sink.viewerId)),
    );
  }

  override endAll(error?: unknown): void {
    for (const t of this.typists.values()) clearTimeout(t.timer);
    this.typists.clear();
    super.endAll(error);
  }
}
