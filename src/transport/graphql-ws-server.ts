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

const OPEN = 1;

/** What graphql-ws hands its hooks as `ctx.extra`, as `useServer` does. */
export interface WsExtra {
  socket: WebSocket;
  request: unknown;
}

const ADAPTER = Symbol('anonymo.graphqlWs');
type Adapted = WebSocket & { [ADAPTER]?: SocketAdapter };

/** The socket's `message` and `close` listeners: shared functions (the socket is `this`), no closures per socket. */
function onMessage(this: Adapted, data: RawData): void {
  this[ADAPTER]?.receive(data);
}
function onClose(this: Adapted, code: number, reason: Buffer): void {
  const adapter = this[ADAPTER];
  this[ADAPTER] = undefined;
  adapter?.closed(code, String(reason));
}

/** One socket as graphql-ws's protocol sees it. */
class SocketAdapter implements ProtocolSocket {
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

  closed(code: number, reason: string): void {
    this.protocolClosed?.(code, reason).catch((err: unknown) =>
      this.logger.error({ err }, "error while ending a closed socket's operations"),
    );
  }

  /** As `useServer` does: a hook threw; the socket closes with 4500 (no details to the client). */
  private internalError(err: unknown): void {
    this.logger.error({ err }, 'internal error while handling a graphql-ws message');
    this.socket.close(CloseCode.InternalServerError, 'Internal server error');
  }
}

/** Serves graphql-ws on `wss` (a `noServer` WebSocketServer); returns its dispose. */
export function serveGraphqlWs<P extends Record<string, unknown>, E extends WsExtra>(
  options: ServerOptions<P, E>,
  wss: WebSocketServer,
  logger: Logger,
  extra: (socket: WebSocket, request: unknown) => E,
): { dispose(): Promise<void> } {
  const server = makeServer<P, E>(options);
  wss.options.handleProtocols = handleProtocols;
  wss.on('connection', (socket: Adapted, request: unknown) => {
    const adapter = new SocketAdapter(socket, logger);
    socket[ADAPTER] = adapter;
    socket.on('close', onClose);
    adapter.protocolClosed = server.opened(adapter, extra(socket, request));
  });
  return {
    dispose: async () => {
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
