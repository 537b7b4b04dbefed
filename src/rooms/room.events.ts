/** Live events of the rooms domain. */

/**
 * A member left a private room, or was removed by deleteMyData: every instance ends that
 * user's open subscriptions to the room (messages, updates, typing), which they may no longer read.
 */
export const ROOM_LEFT_TOPIC = 'room-left';
export interface RoomLeftPayload {
  room: string;
  user: string;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    'room-left': RoomLeftPayload;
  }
}
