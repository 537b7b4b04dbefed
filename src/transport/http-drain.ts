/**
 * Graceful stop of the HTTP server: Apollo's `ApolloServerPluginDrainHttpServer` (stop
 * accepting, end idle keep-alive sockets, let in-flight requests finish, end their sockets,
 * destroy everything left after the grace period), with one difference: a socket leaves the
 * drain's books when it becomes a WebSocket (`release`).
 *
 * Apollo's plugin tracks every socket the server accepts until it closes, with a `once`
 * wrapper, a bound function and a closure per socket: for a WebSocket that is ~0.3 KiB held
 * as long as the connection, for nothing, since the WebSocket transport closes its own
 * sockets. Here a WebSocket costs nothing, and an HTTP socket one Map entry and a listener
 * function shared by all sockets. At the end of the grace period the WebSockets still open
 * are cut too (`cutWebSockets`), as Apollo's plugin did by destroying every socket.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApolloServerPlugin } from '@apollo/server';

export class HttpDrain {
  /** Open HTTP sockets and the requests each has in flight. */
  private readonly requests = new Map<Duplex, number>();
  private stopped = false;
  /** Every socket's `close` listener (the socket is `this`). */
  private readonly forget: (this: Duplex) => void;

  constructor(private readonly server: Server) {
    const requests = this.requests;
    this.forget = function (this: Duplex) {
      requests.delete(this);
    };
    server.on('connection', (socket: Duplex) => {
      requests.set(socket, 0);
      socket.on('close', this.forget);
    });
    server.on('request', (req, res) => {
      const socket = req.socket;
      if (!requests.has(socket)) return;
      requests.set(socket, requests.get(socket)! + 1);
      res.once('finish', () => {
        if (!requests.has(socket)) return;
        const pending = requests.get(socket)! - 1;
        requests.set(socket, pending);
        if (this.stopped && pending === 0) socket.end();
      });
    });
  }

  /** The socket is becoming a WebSocket: from now on the WebSocket transport ends it. */
  release(socket: Duplex): void {
    if (this.requests.delete(socket)) socket.off('close', this.forget);
  }

  /** HTTP sockets open now (tests, leak checks). */
  get size(): number {
    return this.requests.size;
  }

  /** The Apollo plugin whose drain stops the server (`graceMs`, then `cutWebSockets` and every socket destroyed). */
  plugin(graceMs: number, cutWebSockets: () => void): ApolloServerPlugin {
    return {
      serverWillStart: () =>
        Promise.resolve({
          drainServer: async () => {
            await this.stop(AbortSignal.timeout(graceMs), cutWebSockets);
          },
        }),
    };
  }

  /** Apollo's Stopper.stop: true when every socket closed within the grace period. */
  async stop(hardStop: AbortSignal, cutWebSockets: () => void): Promise<boolean> {
    let gracefully = true;
    await new Promise((resolve) => setImmediate(resolve));
    this.stopped = true;
    const onAbort = () => {
      gracefully = false;
      cutWebSockets();
      this.requests.forEach((_, socket) => socket.end());
      setImmediate(() => this.requests.forEach((_, socket) => socket.destroy()));
    };
    hardStop.addEventListener('abort', onAbort);
    const closed = new Promise<void>((resolve) =>
      this.server.close(() => {
        hardStop.removeEventListener('abort', onAbort);
        resolve();
      }),
    );
    this.requests.forEach((requests, socket) => {
      if (requests === 0) socket.end();
    });
    await closed;
    return gracefully;
  }
}
