/**
 * WebSocket keepalive with one timer for the whole server. graphql-ws's built-in keepalive
 * gives every connection its own interval, ping timeout and closures; at 10k idle
 * subscribers that is 10k timers and a few hundred bytes each, all firing separately.
 */
import type { WebSocket, WebSocketServer } from 'ws';

/**
 * Pings every open socket each `intervalMs`; one that has not answered the previous ping
 * by the next round (silent for up to two intervals) is terminated. 0 disables it.
 * Returns the function that stops it.
 */
export function startKeepAlive(wss: WebSocketServer, intervalMs: number): () => void {
  if (!(intervalMs > 0)) return () => undefined;
  const awaitingPong = new WeakSet<WebSocket>();
  // One shared listener function (it gets the socket as `this`) instead of a closure per socket.
  function onPong(this: WebSocket): void {
    awaitingPong.delete(this);
  }
  const onConnection = (ws: WebSocket) => ws.on('pong', onPong);
  wss.on('connection', onConnection);
  const timer = setInterval(() => {
    for (const ws of wss.clients) {
      if (awaitingPong.has(ws)) {
        ws.terminate();
        continue;
      }
      awaitingPong.add(ws);
      ws.ping();
    }
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    wss.off('connection', onConnection);
  };
}
