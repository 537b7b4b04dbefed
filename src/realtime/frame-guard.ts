/**
 * graphql-ws answers a client frame of a type only servers send (`connection_ack`, `next`,
 * `error`) by throwing inside its message handler; a ws adapter then logs the stack and closes
 * with 4500 Internal Server Error. Any client could fill the logs that way (found by the
 * fuzzer). Such a frame is the client's protocol error: the WebSocket transport closes it
 * with 4400 Bad Request, as graphql-ws does for other invalid messages, before graphql-ws
 * sees it (transport/graphql-ws-server.ts).
 */
const SERVER_ONLY_TYPES = new Set(['connection_ack', 'next', 'error']);
const HINT = /"(?:connection_ack|next|error)"/;

/** Whether a client's text frame is a message of a type only servers send. */
export function isServerOnlyMessage(text: string): boolean {
  if (!HINT.test(text)) return false;
  try {
    const message = JSON.parse(text) as { type?: unknown } | null;
    return typeof message?.type === 'string' && SERVER_ONLY_TYPES.has(message.type);
  } catch {
    return false; // graphql-ws refuses it itself (4400)
  }
}
