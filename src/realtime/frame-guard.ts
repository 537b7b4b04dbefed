/**
 * graphql-ws answers a client frame of a type only servers send (`connection_ack`, `next`,
 * `error`) by throwing inside its message handler; its ws adapter then writes the stack with
 * console.error and closes with 4500 Internal Server Error. Any client could fill the logs
 * that way (found by the fuzzer). Such a frame is the client's protocol error: it is closed
 * with 4400 Bad Request, as graphql-ws does for other invalid messages, before graphql-ws
 * sees it.
 */
import type { RawData, WebSocket, WebSocketServer } from 'ws';

const SERVER_ONLY_TYPES = new Set(['connection_ack', 'next', 'error']);
const HINT = /"(?:connection_ack|next|error)"/;

function isServerOnlyFrame(data: RawData): boolean {
  const text = Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as Buffer).toString();
  if (!HINT.test(text)) return false;
  try {
    const message = JSON.parse(text) as { type?: unknown } | null;
    return typeof message?.type === 'string' && SERVER_ONLY_TYPES.has(message.type);
  } catch {
    return false; // graphql-ws refuses it itself (4400)
  }
}

/** Wraps the `message` listeners that graphql-ws adds to each socket; call before `useServer`. */
export function guardClientFrames(wss: WebSocketServer): void {
  wss.on('connection', (socket: WebSocket) => {
    const on = socket.on.bind(socket) as (event: string, listener: (...args: unknown[]) => void) => WebSocket;
    const guarded = (event: string, listener: (...args: unknown[]) => void): WebSocket => {
      if (event !== 'message') return on(event, listener);
      return on('message', (data: unknown, isBinary: unknown) => {
        if (isServerOnlyFrame(data as RawData)) return socket.close(4400, 'Invalid message received');
        listener(data, isBinary);
      });
    };
    socket.on = guarded as WebSocket['on'];
  });
}
