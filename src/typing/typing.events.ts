/** Live events of typing indicators (ephemeral, never stored). */
import type { UserRecord } from '../users/user.type';

/** Someone started or stopped typing in a conversation. */
export const typingTopic = (conversation: string) => `typing:${conversation}` as const;

export interface TypingPayload {
  conversation: string;
  user: UserRecord;
  typing: boolean;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    [topic: `typing:${string}`]: TypingPayload;
  }
}
