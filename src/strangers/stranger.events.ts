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

declare module '../realtime/pubsub' {
  interface TopicMap {
    [topic: `stranger:${string}`]: StrangerPayload;
  }
}
