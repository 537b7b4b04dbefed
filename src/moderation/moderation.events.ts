/** Live events of abuse control. */

/** A ban set or lifted: every instance updates its cache of ban lookups. */
export const BANS_TOPIC = 'moderation:bans' as const;

export interface BanChange {
  /** `user:<id>` or `net:<hash>`. */
  key: string;
  /** Epoch ms; absent when the ban was lifted. */
  until?: number;
  shadow?: boolean;
  /** Epoch ms the ban was set (network bans follow identities created after it). */
  at?: number;
}

/** A conversation's slow mode changed. */
export const SLOW_MODE_TOPIC = 'moderation:slowmode' as const;

export interface SlowModeChange {
  conversation: string;
  seconds: number;
}

/** A message was changed by moderation (hidden, shown again, erased): instances refresh held copies. */
export const MESSAGE_CHANGED_TOPIC = 'moderation:message' as const;

declare module '../realtime/pubsub' {
  interface TopicMap {
    'moderation:message': { id: string };
    'moderation:bans': BanChange;
    'moderation:slowmode': SlowModeChange;
  }
}
