/** Session lifecycle events, heard by every instance's WebSocket transport. */

/** A session ended (identity reset): its WebSockets on every instance are closed. */
export const SESSION_REVOKED_TOPIC = 'session-revoked';

/** Close code for WebSockets of a session that ended (graphql-ws clients reconnect on it). */
export const SESSION_REVOKED_CLOSE = { code: 4001, reason: 'Identity reset' } as const;

export interface SessionRevokedPayload {
  sessionId: string;
}

declare module '../realtime/pubsub' {
  interface TopicMap {
    'session-revoked': SessionRevokedPayload;
  }
}
