/**
 * graphql-ws on a `ws` server, through graphql-ws's documented `makeServer` (the protocol)
 * instead of its `useServer` glue for ws. The protocol, its hooks and close codes are
 * graphql-ws's own; only the adapter between a ws socket and the protocol is ours, because
 * `useServer`'s costs memory for as long as each connection lives:
 * - its `message` listener is an async function awaiting the protocol's handler, which for a
 *   `subscribe` message runs until the subscription ends: a suspended frame per subscription
 *   that also keeps the raw frame's Buffer (~1.2 KiB with its promises);
 * - `once` wrappers for `error` and `close`, and closures for send, close and onMessage, per socket.
 * Here the adapter is one small object per socket with its methods on the prototype; the raw
 * frame is decoded before the handler runs and nothing awaits the handler on its behalf.
 * Keepalive and the connection_init deadline are handled elsewhere with one timer for all
 * sockets (realtime/keepalive.ts), so this passes no keepalive.
 */
import {
  CloseCode,
  handleProtocols,
  makeServer,
  type ServerOptions,
  type WebSocket as ProtocolSocket,
} from 'graphql-ws';
import type { Logger } from 'pino';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { isServerOnlyMessage } from '../realtime/frame-guard';
import { addSocketCloseHook, type SocketCloseHook } from '../realtime/socket-close';

const OPEN = 1;

/** What graphql-ws hands its hooks as `ctx.extra`: at least the socket, as `useServer` does. */
export interface WsExtra {
  socket: WebSocket;
}

const ADAPTER = Symbol('anonymo.graphqlWs');
type Adapted = WebSocket & { [ADAPTER]?: SocketAdapter };

/** The socket's `message` listener: a shared function (the socket is `this`), no closure per socket. */
function onMessage(this: Adapted, data: RawData): void {
  this[ADAPTER]?.receive(data);
}

/**
 * One socket as graphql-ws's protocol sees it. It learns of the socket's close through the
 * socket's shared close hooks (realtime/socket-close.ts) rather than a `close` listener of
 * its own: ws and the hooks already hold two, and a third grows Node's listener array to 20
 * slots (~0.15 KiB per connection).
 */
class SocketAdapter implements ProtocolSocket, SocketCloseHook {
  private handler?: (data: string) => Promise<void>;
  /** What graphql-ws's `opened` returned: ends the socket's operations. */
  protocolClosed?: (code: number, reason: string) => Promise<void>;

  constructor(
    private readonly socket: Adapted,
    private readonly logger: Logger,
  ) {}

  get protocol(): string {
    return this.socket.protocol;
  }

  send(data: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.readyState !== OPEN) return resolve();
      this.socket.send(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(cb: (data: string) => Promise<void>): void {
    this.handler = cb;
    this.socket.on('message', onMessage);
  }

  receive(data: RawData): void {
    // Decoded here, so the frame's Buffer is not kept while a subscription's handler runs.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a text frame: Buffer or Buffer[]
    const text = String(data);
    if (isServerOnlyMessage(text)) return this.socket.close(CloseCode.BadRequest, 'Invalid message received');
    this.handler?.(text).catch((err: unknown) => this.internalError(err));
  }

  socketClosed(code: number, reason: Buffer): void {
    this.socket[ADAPTER] = undefined;
    this.protocolClosed?.(code, String(reason)).catch((err: unknown) =>
      this.logger.error({ err }, "error while ending a closed socket's operations"),
    );
  }

  /** As `useServer` does: a hook threw; the socket closes with 4500 (no details to the client). */
  private internalError(err: unknown): void {
    this.logger.error({ err }, 'internal error while handling a graphql-ws message');
    this.socket.close(CloseCode.InternalServerError, 'Internal server error');
  }
}

/**
 * graphql-ws's protocol for the sockets of `wss` (a `noServer` WebSocketServer): `open` starts
 * it on a new socket with its `ctx.extra`; `dispose` closes every socket and the server.
 */
export function serveGraphqlWs<P extends Record<string, unknown>, E extends WsExtra>(
  options: ServerOptions<P, E>,
  wss: WebSocketServer,
  logger: Logger,
): { open(socket: WebSocket, extra: E): void; dispose(): Promise<void> } {
  const server = makeServer<P, E>(options);
  wss.options.handleProtocols = handleProtocols;
  return {
    open: (socket: Adapted, extra: E) => {
      const adapter = new SocketAdapter(socket, logger);
      socket[ADAPTER] = adapter;
      addSocketCloseHook(socket, adapter);
      adapter.protocolClosed = server.opened(adapter, extra);
    },
    dispose: async () => {
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
