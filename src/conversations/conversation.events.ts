/** Live events of direct conversations: read receipts and conversation-list updates. */
import type { MessageDoc } from '../messages/message.model';
import type { UserRecord } from '../users/user.type';

/** `markRead` moved the read marker of a direct conversation. */
export const readTopic = (conversation: string) => `read:${conversation}` as const;
/** One of a user's direct conversations changed (new message, read marker): their list updates live. */
export const inboxTopic = (userId: string) => `inbox:${userId}` as const;

export interface ReadPayload {
  conversation: string;
  /** Who read: the recipient of the messages. */
  reader: UserRecord;
  /** Everything from the other user up to and including this message is read. */
  upTo: MessageDoc;
  /** How many messages changed. */
  count: number;
  at: Date;
}

export interface InboxPayload {
  ownerId: string;
  /** The conversation as the owner's `conversations` query would show it now. */
  summary: {
    with: UserRecord;
    lastMessage: MessageDoc | null;
    unreadCount: number;
  };
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    [topic: `read:${string}`]: ReadPayload;
    [topic: `inbox:${string}`]: InboxPayload;
  }
}
