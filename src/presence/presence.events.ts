/** Live events of presence (global online/offline transitions only). */
import type { UserRecord } from '../users/user.type';

/** A user went online or offline. */
export const PRESENCE_TOPIC = 'presence';

export interface PresencePayload {
  user: UserRecord;
  online: boolean;
  at: Date;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    presence: PresencePayload;
  }
}
