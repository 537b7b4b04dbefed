/** Live events of the message lifecycle. */
import type { MessagePayload } from '../messages/message.events';
import type { MessageDoc } from '../messages/message.model';

/** A message of the conversation changed (edit, deletion, reactions): its state after change `n`. */
export const updateTopic = (conversation: string) => `message-updated:${conversation}` as const;

export interface UpdatePayload extends MessagePayload {
  conversation: string;
  /** Position in the conversation's update sequence (1, 2, 3, ...). */
  n: number;
}

/** A message changed (any conversation): every instance updates its recent-message cache. */
export const MESSAGE_CHANGED_TOPIC = 'message-changed';
export interface MessageChangedPayload {
  message: MessageDoc;
  /**
   * Its number in the conversation's update sequence. Publications of two instances can
   * arrive in either order; the state read for a higher number is the newer one.
   */
  n?: number;
}

/** The purge replaced expired messages by stubs: every instance's cache holds the stubs instead. */
export const MESSAGES_PURGED_TOPIC = 'messages-purged';
export interface MessagesPurgedPayload {
  stubs: MessageDoc[];
}

/**
 * A message that will expire was stored: every instance's purge job resumes scanning (it skips
 * its passes while it knows of no message that could expire). At most one per instance and
 * purge interval.
 */
export const MESSAGES_EXPIRING_TOPIC = 'messages-expiring';
export interface MessagesExpiringPayload {
  at: number;
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
    'message-changed': MessageChangedPayload;
    'messages-purged': MessagesPurgedPayload;
    'messages-expiring': MessagesExpiringPayload;
    'user-deleted': UserDeletedPayload;
  }
}
