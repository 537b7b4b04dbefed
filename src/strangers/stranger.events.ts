/** Live events of "talk to a stranger". */
import type { UserRecord } from '../users/user.type';

/** A user's own stranger events (MATCHED, ENDED), whichever instance produced them. */
export const strangerTopic = (userId: string) => `stranger:${userId}` as const;

export interface StrangerPayload {
  kind: 'MATCHED' | 'ENDED';
  /** The stranger. */
  with: UserRecord;
  sharedInterests: string[];
}

/** A stranger chat ended (on any instance): every instance refuses DMs between the pair from now on. */
export const STRANGER_ENDED_TOPIC = 'stranger-ended';

export interface StrangerEndedPayload {
  /** The pair's key (stranger.matcher.ts pairKey). */
  pair: string;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    [topic: `stranger:${string}`]: StrangerPayload;
    'stranger-ended': StrangerEndedPayload;
  }
}
