/** Live events of the messages domain. */
import type { UserRecord } from '../users/user.type';
import type { MessageDoc } from './message.model';

/** A stored message of one conversation, published after the write is acknowledged. */
export const messageTopic = (conversation: string) => `message:${conversation}` as const;

export interface MessagePayload {
  message: MessageDoc;
  /** The users involved, so subscribers do not each look them up. */
  sender: UserRecord;
  recipient: UserRecord | null;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    [topic: `message:${string}`]: MessagePayload;
  }
}
