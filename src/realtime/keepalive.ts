/**
 * WebSocket keepalive with one timer for the whole server. graphql-ws's built-in keepalive
 * gives every connection its own interval, ping timeout and closures; at 10k idle
 * subscribers that is 10k timers and a few hundred bytes each.
 *
 * The sockets are pinged in slices spread over the interval rather than all at once: 10k
 * pings (and their pongs) in one go would stall message delivery for tens of milliseconds
 * every interval.
 */
import type { WebSocket, WebSocketServer } from 'ws';

/** Each interval is split into this many ticks; each tick pings about 1/SLICES of the sockets. */
const SLICES = 16;

/**
 * Pings every open socket about once per `intervalMs`; one that has not answered a ping
 * after `intervalMs` is terminated on its next turn (so a peer silent for up to two
 * intervals is dropped). 0 disables it. Returns the function that stops it.
 */
export function startKeepAlive(wss: WebSocketServer, intervalMs: number): () => void {
  if (!(intervalMs > 0)) return () => undefined;
  /** When each socket was pinged, while its pong is outstanding. */
  const pingedAt = new WeakMap<WebSocket, number>();
  // One shared listener function (it gets the socket as `this`) instead of a closure per socket.
  function onPong(this: WebSocket): void {
    pingedAt.delete(this);
  }
  const onConnection = (ws: WebSocket) => ws.on('pong', onPong);
  wss.on('connection', onConnection);
  let slice = 0;
  const timer = setInterval(
    () => {
      const now = Date.now();
      let i = 0;
      for (const ws of wss.clients) {
        if (i++ % SLICES !== slice) continue;
        const since = pingedAt.get(ws);
        if (since !== undefined) {
          if (now - since >= intervalMs) ws.terminate();
          continue;
        }
        pingedAt.set(ws, now);
        ws.ping();
      }
      slice = (slice + 1) % SLICES;
    },
    Math.max(1, Math.floor(intervalMs / SLICES)),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    wss.off('connection', onConnection);
  };
}

/**
 * graphql-ws's `connectionInitWaitTimeout` with one timer for the whole server: graphql-ws arms
 * a timer per connection and keeps it (and its closure) for the connection's lifetime, even
 * after `connection_init` arrived. Here sockets wait in arrival order (the deadline is the
 * same for all), and one timer closes those still uninitialised with 4408 at their deadline.
 */
export class InitDeadline {
  /** Sockets still waiting for `connection_init`, oldest first, with their deadlines. */
  private readonly waiting = new Map<WebSocket, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  watch(socket: WebSocket): void {
    if (!(this.timeoutMs > 0)) return;
    this.waiting.set(socket, Date.now() + this.timeoutMs);
    this.timer ??= setTimeout(() => this.expire(), this.timeoutMs).unref();
  }

  initialised(socket: WebSocket): void {
    this.waiting.delete(socket);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.waiting.clear();
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const [socket, deadline] of this.waiting) {
      if (deadline > now) {
        this.timer = setTimeout(() => this.expire(), deadline - now).unref();
        return;
      }
      this.waiting.delete(socket);
      // The code and reason graphql-ws uses (CloseCode.ConnectionInitialisationTimeout).
      if (socket.readyState === socket.OPEN) socket.close(4408, 'Connection initialisation timeout');
    }
  }
}
