/**
 * Topic names and payload types of everything published between resolvers, services and
 * subscriptions, and the PubSub transport (in-process by default; Redis across instances).
 *
 * Topics are narrow (one per conversation) so that a subscriber only ever receives events
 * of its own conversation: no global topic filtered per subscriber.
 */
import type { MessageDoc } from './messages/message.model';
import type { UserRecord } from './users/user.type';

export const Topic = {
  /** A stored message of one conversation, published after the write is acknowledged. */
  message: (conversation: string) => `message:${conversation}` as const,
  /** `markRead` moved the read marker of a direct conversation. */
  read: (conversation: string) => `read:${conversation}` as const,
  /** One of a user's direct conversations changed (new message, read marker): their list updates live. */
  inbox: (userId: string) => `inbox:${userId}` as const,
  /** Someone started or stopped typing in a conversation. */
  typing: (conversation: string) => `typing:${conversation}` as const,
  /** A user went online or offline (global transitions only). */
  presence: 'presence' as const,
  /** A session ended (identity reset): its WebSockets on every instance are closed. */
  sessionRevoked: 'session-revoked' as const,
};

export interface SessionRevokedPayload {
  sessionId: string;
}

export interface MessagePayload {
  message: MessageDoc;
  /** The users involved, so subscribers do not each look them up. */
  sender: UserRecord;
  recipient: UserRecord | null;
}

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

export interface TypingPayload {
  conversation: string;
  user: UserRecord;
  typing: boolean;
}

export interface PresencePayload {
  user: UserRecord;
  online: boolean;
  at: Date;
}

export type Listener<T> = (payload: T) => void;

export interface PubSub {
  publish(topic: string, payload: unknown): Promise<void>;
  /** Resolves once the subscription is live; the returned function unsubscribes. */
  subscribe<T>(topic: string, listener: Listener<T>): Promise<() => void>;
  close(): Promise<void>;
}

/**
 * Single-process pub/sub. Delivery is asynchronous (a microtask later), like a broker,
 * so a publisher never runs subscriber fan-out inside its own request.
 */
export class LocalPubSub implements PubSub {
  private readonly topics = new Map<string, Set<Listener<unknown>>>();

  async publish(topic: string, payload: unknown): Promise<void> {
    const listeners = this.topics.get(topic);
    if (!listeners?.size) return;
    const snapshot = [...listeners];
    queueMicrotask(() => {
      for (const l of snapshot) l(payload);
    });
  }

  async subscribe<T>(topic: string, listener: Listener<T>): Promise<() => void> {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(listener as Listener<unknown>);
    return () => {
      set!.delete(listener as Listener<unknown>);
      if (set!.size === 0 && this.topics.get(topic) === set) this.topics.delete(topic);
    };
  }

  async close(): Promise<void> {
    this.topics.clear();
  }
}
