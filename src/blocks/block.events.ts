/** Live events of the blocks domain. */

/** Every instance keeps the blocked sets of its connected viewers current through this topic. */
export const BLOCKS_TOPIC = 'blocks:changed' as const;

export interface BlockChange {
  blocker: string;
  blocked: string;
  on: boolean;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    'blocks:changed': BlockChange;
  }
}
