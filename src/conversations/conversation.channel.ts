/** Channel kinds of direct conversations: the viewer's conversation list, and read receipts. */
import type { MessageService } from '../messages/message.service';
import type { ChannelKind } from '../realtime/engine';
import { inboxTopic, readTopic } from './conversation.events';

/** `conversationUpdated`: the viewer's own list, on a topic of their own. */
export function inboxChannelKind(): ChannelKind<`inbox:${string}`, undefined> {
  return { name: 'inbox', route: (viewerId) => ({ topic: inboxTopic(viewerId), options: undefined }) };
}

/** `messagesRead(with)`: read receipts of one direct conversation of the viewer. */
export function readChannelKind(
  messages: Pick<MessageService, 'conversationWith'>,
): ChannelKind<`read:${string}`, undefined> {
  return {
    name: 'read',
    async route(viewerId, args) {
      const { key } = await messages.conversationWith({ id: viewerId }, args.with as string | null | undefined);
      return { topic: readTopic(key), options: undefined };
    },
  };
}
