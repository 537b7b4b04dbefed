/** Live events of the message lifecycle. */
import type { MessagePayload } from '../messages/message.events';

/** A message of the conversation changed (edit, deletion, reactions): its state after change `n`. */
export const updateTopic = (conversation: string) => `message-updated:${conversation}` as const;

export interface UpdatePayload extends MessagePayload {
  conversation: string;
  /** Position in the conversation's update sequence (1, 2, 3, ...). */
  n: number;
}

/** A conversation's disappearing-messages setting changed: every instance drops its cached copy. */
export const TTL_CHANGED_TOPIC = 'message-ttl-changed';
export interface TtlChangedPayload {
  conversation: string;
  seconds: number | null;
}

/** A user erased their data: every instance forgets its cached copy of the user. */
export const USER_DELETED_TOPIC = 'user-deleted';
export interface UserDeletedPayload {
  userId: string;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    [topic: `message-updated:${string}`]: UpdatePayload;
    'message-ttl-changed': TtlChangedPayload;
    'user-deleted': UserDeletedPayload;
  }
}
