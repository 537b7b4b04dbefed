/**
 * The WebSocket transport: graphql-ws over ws on the HTTP server's upgrade event for
 * /graphql. It checks each upgrade (path, capacity, origin, rate, identity), keeps a registry
 * of open sockets by session (to close them when a session is revoked on any instance), and
 * builds each operation's Context the same way as HTTP (context.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from 'express';
import {
  GraphQLError,
  createSourceEventStream,
  execute,
  subscribe,
  type ExecutionArgs,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import type { Context as WsContext } from 'graphql-ws';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config';
import type { Context, LiveSubscribe } from '../context';
import {
  ErrorCode,
  PowRequiredError,
  RateLimitedError,
  formatGraphQLError,
  isDatabaseUnavailable,
  type FormatOptions,
} from '../errors';
import { logClosed, logConnected } from '../observability/http-logger';
import type { Metrics } from '../observability/metrics';
import { destroyOnError, flat, releaseUpgradeRequest } from '../realtime/connection-memory';
import type { RealtimeEngine } from '../realtime/engine';
import { SinkIterator, type Subscriber } from '../realtime/fanout';
import { InitDeadline, startKeepAlive } from '../realtime/keepalive';
import type { PubSub } from '../realtime/pubsub';
import { clientIp, type TrustFn } from '../security/ip';
import type { OriginPolicy } from '../security/origin';
import { POW_QUERY_PARAM, type IdentityGate } from '../security/pow';
import { rateLimitedError, type RateLimits } from '../security/rate-limit';
import { checkUpgrade, tooManyRequests } from '../security/upgrade';
import { UpgradeBucket } from '../security/upgrade-bucket';
import { upgradeIdentity, type Identity } from '../sessions/identity';
import { SESSION_REVOKED_CLOSE, SESSION_REVOKED_TOPIC } from '../sessions/session.events';
import type { UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import type { OperationValidator } from '../validation';
import { createContext } from './context';
import { serveGraphqlWs } from './graphql-ws-server';
import { addSocketCloseHook, type SocketCloseHook } from '../realtime/socket-close';
import { OperationIds } from '../realtime/operation-ids';
import type { ConnectionCounter } from '../security/connection-limits';
import { costError, type CostCache, type DefaultListSizes } from '../security/cost';

/** How long a new socket may take to send `connection_init` (graphql-ws's default). */
const CONNECTION_INIT_WAIT_MS = 3000;

/** The upgrade request, with what the upgrade handler learned about its connection. */
type UpgradeRequest = IncomingMessage & { anonymo?: Connection };
/** What graphql-ws's hooks get as `ctx.extra`: the connection's record. */
type Extra = Connection;

export interface WsTransportDeps {
  config: Config;
  logger: Logger;
  schema: GraphQLSchema;
  validator: OperationValidator;
  format: FormatOptions;
  metrics: Metrics;
  realtime: RealtimeEngine;
  pubsub: PubSub;
  users: UserService;
  presence: { connected(user: UserRecord): void; disconnected(user: UserRecord): void };
  limits: RateLimits;
  /** Whether a new identity may be created (identity budget, proof of work). */
  identityGate: IdentityGate;
  /** Open connections per address and per user (security/connection-limits.ts). */
  connections: ConnectionCounter;
  /** List fields' sizes when the client gives none, for the cost limit (security/cost.ts). */
  listSizes: DefaultListSizes;
  origins: OriginPolicy;
  sessionMiddleware: RequestHandler;
  sessionSecret: string;
  /** How the client address is read behind proxies (express's compiled `trust proxy`). */
  trustProxy: TrustFn;
  /** The HTTP server's drain (http-drain.ts): an upgraded socket leaves it. */
  drain?: { release(socket: Duplex): void };
}

export interface WsTransport {
  /** The HTTP server's `upgrade` listener. */
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Refuses new upgrades from now on (shutdown). */
  stopAccepting(): void;
  /** Ends every subscription and closes every WebSocket with 1001. */
  dispose(): Promise<void>;
  /** Cuts every WebSocket at once (the shutdown's grace period is over). */
  terminate(): void;
  stats(): { connections: number; refusedForCapacity: number; refusedForRate: number };
}

function rejectUpgrade(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string> = {},
  error: { message: string; extensions?: Record<string, unknown> } = { message },
): void {
  const body = JSON.stringify({ errors: [error] });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  );
}

/** graphql-ws's `onSubscribe`: limits, validation, and the operation's Context. */
function subscribeHook(deps: WsTransportDeps, operationIds: OperationIds) {
  const { config, limits, validator, schema, realtime, users, metrics } = deps;
  const { maxCost } = config.security.operations;
  const costs: CostCache = new WeakMap();
  return async (
    ctx: WsContext<Record<string, unknown>, Extra>,
    id: string,
    payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
  ) => {
    metrics.wsOperationStarted(ctx, id);
    if (!operationIds.claim(ctx, id, payload)) {
      // As graphql-ws does for an id in use: reusing one before its operation ended is a
      // protocol error (an error answer would let graphql-ws drop the first operation's id).
      ctx.extra.socket.close(4409, `Subscriber for ${id} already exists`);
      return [new GraphQLError(`Subscriber for ${id} already exists`, { extensions: { code: ErrorCode.BAD_REQUEST } })];
    }
    // Counted before any await: graphql-ws registers each id as its message arrives, so a
    // burst of subscribe messages is judged in arrival order.
    if (Object.keys(ctx.subscriptions).length > config.maxSubscriptionsPerConnection) {
      return [
        new GraphQLError(`At most ${config.maxSubscriptionsPerConnection} operations per connection`, {
          extensions: { code: ErrorCode.RATE_LIMITED },
        }),
      ];
    }
    const info = ctx.extra;
    const wait = await limits.retryAfter('wsOperations', { connection: info.connectionId });
    if (wait > 0) return [rateLimitedError('wsOperations', wait)];
    const document = validator.check(payload.query);
    if (Array.isArray(document)) return document;
    // graphql-ws keeps the subscribe payload for the operation's lifetime: point it at the
    // cached document's copy of the text, so thousands of subscribers of one operation hold
    // one string instead of one each.
    const canonical = document.loc?.source.body;
    if (canonical !== undefined && canonical === payload.query) payload.query = canonical;
    const variables = payload.variables ?? {};
    const tooCostly = costError(document, payload.operationName, variables, maxCost, deps.listSizes, costs);
    if (tooCostly) return [tooCostly];
    const operation = new WsOperation(
      realtime,
      info.identity.user.id,
      ctx.extra.socket,
      id,
      payload,
      document,
      variables,
    );
    const contextValue: Context = createContext(
      {
        identity: info.identity,
        transport: 'ws',
        requestId: info.connectionId,
        ip: info.ip,
        moderatorToken:
          typeof ctx.connectionParams?.moderatorToken === 'string' ? ctx.connectionParams.moderatorToken : undefined,
        live: operation,
      },
      users,
    );
    operation.contextValue = contextValue;
    const args: ExecutionArgs = {
      schema,
      document,
      operationName: payload.operationName,
      variableValues: variables,
      contextValue,
    };
    return args;
  };
}

/**
 * One graphql-ws operation as the fan-out sees it (its Subscriber), and the `live` of its
 * Context. One object per operation instead of a subscriber literal plus a `live` closure over
 * the hook's scope (~0.25 KiB per idle subscriber).
 */
class WsOperation implements Subscriber, LiveSubscribe {
  readonly query: string;
  readonly operationName?: string | null;
  contextValue: unknown;

  constructor(
    private readonly realtime: RealtimeEngine,
    readonly viewerId: string,
    readonly socket: WebSocket,
    readonly subscriptionId: string,
    payload: { query: string; operationName?: string | null },
    readonly document: DocumentNode,
    readonly variables: Record<string, unknown>,
  ) {
    this.query = payload.query;
    this.operationName = payload.operationName;
  }

  start(kind: string, args: Record<string, unknown>): Promise<AsyncIterableIterator<unknown>> {
    return this.realtime.subscribe(this, kind, args);
  }
}

/** Per-subscriber mode: executes one event for its subscription (graphql-js's mapping, see SinkIterator). */
function executeEvent(args: ExecutionArgs, event: unknown): unknown {
  return execute({ ...args, rootValue: event });
}

/**
 * graphql-ws's `subscribe`: graphql-js's `subscribe()` without its mapAsyncIterator around the
 * fan-out's iterator. That wrapper (an object, five closures and a suspended async `next`,
 * ~1 KiB) would live as long as each subscription, for nothing in grouped mode, where the
 * iterator never yields; in per-subscriber mode the iterator executes its events itself.
 */
async function subscribeOperation(
  args: ExecutionArgs,
): Promise<ExecutionResult | AsyncIterable<ExecutionResult> | AsyncGenerator<ExecutionResult>> {
  const stream = await createSourceEventStream(args);
  if (stream instanceof SinkIterator) {
    return stream.respondWith(executeEvent, args) as AsyncIterable<ExecutionResult>;
  }
  if (!(Symbol.asyncIterator in stream)) return stream; // the subscription failed: its errors
  // Not a fan-out subscription (none exists today): graphql-js's own path, from the start.
  await stream[Symbol.asyncIterator]().return?.();
  return subscribe(args);
}

/**
 * Open sockets by session, to close them when the session ends (identity reset) on any
 * instance. A session usually has one socket: it is kept as is, and only a session with
 * several gets an array (a Set's smallest table is ~180 bytes per idle connection).
 */
class SocketRegistry {
  private readonly bySession = new Map<string, WebSocket | WebSocket[]>();

  add(sessionId: string, socket: WebSocket): void {
    const held = this.bySession.get(sessionId);
    if (held === undefined) this.bySession.set(sessionId, socket);
    else if (Array.isArray(held)) held.push(socket);
    else this.bySession.set(sessionId, [held, socket]);
  }

  remove(sessionId: string, socket: WebSocket): void {
    const held = this.bySession.get(sessionId);
    if (held === socket) this.bySession.delete(sessionId);
    else if (Array.isArray(held)) {
      const i = held.indexOf(socket);
      if (i >= 0) held.splice(i, 1);
      if (held.length === 0) this.bySession.delete(sessionId);
    }
  }

  revoke(sessionId: string): void {
    const held = this.bySession.get(sessionId);
    if (held === undefined) return;
    for (const socket of Array.isArray(held) ? [...held] : [held]) {
      socket.close(SESSION_REVOKED_CLOSE.code, SESSION_REVOKED_CLOSE.reason);
    }
  }
}

/** What every open connection's record shares (one object for the whole transport). */
interface ConnectionHooks {
  logger: Logger;
  presence: WsTransportDeps['presence'];
  sockets: SocketRegistry;
}

export async function createWsTransport(deps: WsTransportDeps): Promise<WsTransport> {
  const { config, logger, format, metrics, presence } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.security.maxWsPayloadBytes });
  const operationIds = new OperationIds();
  const initDeadline = new InitDeadline(CONNECTION_INIT_WAIT_MS);
  const wsServer = serveGraphqlWs<Record<string, unknown>, Extra>(
    {
      schema: deps.schema,
      // Enforced by initDeadline (one timer for all sockets instead of one kept per socket).
      connectionInitWaitTimeout: 0,
      onConnect: (ctx) => {
        initDeadline.initialised(ctx.extra.socket);
      },
      onSubscribe: subscribeHook(deps, operationIds),
      subscribe: subscribeOperation,
      onOperation: (ctx, id, _payload, args) => metrics.wsOperationDone(ctx, id, args.document, args.operationName),
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors) return;
        const errors = result.errors.map((e) => formatGraphQLError(e, format));
        metrics.countErrors(errors, 'ws');
        return { ...result, errors };
      },
      onComplete: (ctx, id, payload) => operationIds.release(ctx, id, payload),
      onError: (ctx, id, payload, errors) => {
        operationIds.release(ctx, id, payload);
        const formatted = errors.map((e) => formatGraphQLError(e, format));
        metrics.wsOperationFailed(ctx, id, formatted);
        return formatted;
      },
    },
    wss,
    logger,
  );
  const stopKeepAlive = startKeepAlive(wss, config.wsKeepAliveMs);

  wss.on('headers', (headers, req: UpgradeRequest) => {
    if (req.anonymo?.setCookie) headers.push(`Set-Cookie: ${req.anonymo.setCookie}`);
  });
  const hooks: ConnectionHooks = { logger, presence, sockets: new SocketRegistry() };
  // One listener for every socket rather than a closure each.
  const onSocketError = (err: Error) => logger.debug({ err }, 'WebSocket error');
  wss.on('connection', (socket: WebSocket, req: UpgradeRequest) => {
    // An oversized or malformed frame is the client's fault (ws closes that socket itself,
    // e.g. 1009), and must not flood the logs.
    socket.on('error', onSocketError);
    initDeadline.watch(socket);
    // graphql-ws keeps its `extra` as long as the connection: the record, not the upgrade
    // request (an IncomingMessage with its stream state, headers and session objects).
    const connection = req.anonymo!;
    connection.open(socket);
    wsServer.open(socket, connection);
    // After graphql-ws's own hook: a closed socket's operations end before its connection does.
    addSocketCloseHook(socket, connection);
    releaseUpgradeRequest(req);
  });
  const stopRevocations = await deps.pubsub.subscribe(SESSION_REVOKED_TOPIC, ({ sessionId }) =>
    hooks.sockets.revoke(sessionId),
  );

  const admission = new Admission(deps, hooks, () => wss.clients.size);
  return {
    onUpgrade: (req: UpgradeRequest, socket, head) => {
      admission.handle(req, socket, (connection) => {
        // From here the WebSocket's close releases the connection (Connection.socketClosed),
        // and the drain forgets the socket: their raw-socket listeners go before ws adds its
        // own, so the raw socket keeps one `close` listener (three grow Node's listener array
        // to 20 slots, ~0.15 KiB).
        connection.unwatch(socket);
        deps.drain?.release(socket);
        let opened = false;
        wss.handleUpgrade(req, socket, head, (ws) => {
          opened = true;
          connection.done();
          wss.emit('connection', ws, req);
        });
        // ws answers a bad handshake itself without calling back, synchronously (we pass no
        // verifyClient): that connection is not open, its counts go now.
        if (!opened) connection.release();
      });
    },
    stopAccepting: () => admission.stop(),
    dispose: async () => {
      admission.stop();
      deps.realtime.close();
      stopKeepAlive();
      initDeadline.stop();
      stopRevocations();
      await wsServer.dispose();
    },
    terminate: () => {
      for (const client of wss.clients) client.terminate();
    },
    stats: () => ({
      connections: wss.clients.size,
      refusedForCapacity: admission.refusedForCapacity,
      refusedForRate: admission.refusedForRate,
    }),
  };
}

/** The upgrade would exceed the open-connection limits of its address or user. */
class TooManyConnections extends Error {}

/** Sockets upgrading, to their connection (a WeakMap: a property on the socket would stay after). */
const upgrading = new WeakMap<Duplex, Connection>();

/** The raw socket's `close` listener while it upgrades: one function for all sockets (the socket is `this`). */
function releaseOnRawClose(this: Duplex): void {
  upgrading.get(this)?.release();
}

/**
 * One WebSocket connection from its admission to its close, in one object (instead of
 * closures over the upgrade handler's scope, which would keep that scope as long as the
 * connection, and a record per stage):
 * - its place in the counts: upgrades in progress (until `done`) and, once counted, the open
 *   connections of its address and user (until `release`; both idempotent), released by the
 *   raw socket's close while upgrading and by the WebSocket's close once open;
 * - what its operations need (graphql-ws's `ctx.extra`: socket, identity, address, id);
 * - what its close undoes (`socketClosed`: the session registry, presence, the log line).
 */
class Connection implements SocketCloseHook {
  private upgrading = true;
  connectionId = '';
  /** The user it is counted for (until released). */
  private countedUser?: string;
  identity!: Identity;
  /** Sent with the 101 response, then dropped. */
  setCookie?: string;
  socket!: WebSocket;
  private opened = 0;

  constructor(
    private readonly admission: Admission,
    readonly ip: string,
  ) {}

  /** The connection was counted (`acquire`d): the raw socket's close releases it until it is open. */
  counted(socket: Duplex, connectionId: string, user: string): void {
    // randomUUID() returns a rope of its pieces (a quarter KiB) and this id lives as long as the connection.
    this.connectionId = flat(connectionId);
    this.countedUser = user;
    upgrading.set(socket, this);
    socket.on('close', releaseOnRawClose);
  }

  /** The WebSocket's close releases the connection from now on. */
  unwatch(socket: Duplex): void {
    socket.off('close', releaseOnRawClose);
    upgrading.delete(socket);
  }

  done(): void {
    if (!this.upgrading) return;
    this.upgrading = false;
    this.admission.upgradeDone();
  }

  release(): void {
    this.done();
    if (this.countedUser === undefined) return;
    this.admission.connections.release(this.connectionId, { ip: this.ip, user: this.countedUser });
    this.countedUser = undefined;
  }

  /** The WebSocket is open. */
  open(socket: WebSocket): void {
    this.socket = socket;
    // Already in the 101 response's headers: ~0.2 KiB per connection of a new identity.
    this.setCookie = undefined;
    const { user, sessionId } = this.identity;
    const hooks = this.admission.hooks;
    this.opened = Date.now();
    logConnected(hooks.logger, this.connectionId, user.id);
    hooks.presence.connected(user);
    hooks.sockets.add(sessionId, socket);
  }

  socketClosed(code: number): void {
    const { user, sessionId } = this.identity;
    const hooks = this.admission.hooks;
    hooks.sockets.remove(sessionId, this.socket);
    hooks.presence.disconnected(user);
    logClosed(hooks.logger, this.connectionId, user.id, code, Date.now() - this.opened);
    this.release();
  }
}

/**
 * Decides whether an upgrade becomes a WebSocket: path, shutdown, capacity (connections open
 * plus upgrades in progress, so a burst cannot overshoot), origin and rate (before the
 * session is read), then the identity.
 */
class Admission {
  private upgrading = 0;
  private stopped = false;
  refusedForCapacity = 0;
  /** Upgrades admitted per second, all addresses together (WS_UPGRADE_RATE, WS_UPGRADE_BURST). */
  private readonly bucket: UpgradeBucket;

  /** @internal (Connection) */
  readonly connections: ConnectionCounter;

  constructor(
    private readonly deps: WsTransportDeps,
    /** @internal (Connection) */
    readonly hooks: ConnectionHooks,
    private readonly openConnections: () => number,
  ) {
    this.connections = deps.connections;
    this.bucket = new UpgradeBucket({
      ratePerSecond: deps.config.storm.upgradeRate,
      burst: deps.config.storm.upgradeBurst,
    });
  }

  get refusedForRate(): number {
    return this.bucket.refused;
  }

  stop(): void {
    this.stopped = true;
  }

  private atCapacity(): boolean {
    return this.openConnections() + this.upgrading >= this.deps.config.maxConnections;
  }

  private refuseForCapacity(socket: Duplex): void {
    this.refusedForCapacity++;
    // One line per refusal would let a flood flood the logs too: the first, then every 100th.
    if (this.refusedForCapacity === 1 || this.refusedForCapacity % 100 === 0) {
      this.deps.logger.warn(
        { refused: this.refusedForCapacity, limit: this.deps.config.maxConnections },
        'WebSocket refused: server at MAX_CONNECTIONS',
      );
    }
    rejectUpgrade(socket, 503, 'Server at capacity', { 'Retry-After': '5' });
  }

  /** Calls `accept` once the request may be upgraded (the connection's `done` ends the in-progress count). */
  handle(req: UpgradeRequest, socket: Duplex, accept: (connection: Connection) => void): void {
    socket.on('error', destroyOnError);
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname !== '/graphql') return rejectUpgrade(socket, 404, 'Not Found');
    if (this.stopped) return rejectUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': '5' });
    if (this.atCapacity()) return this.refuseForCapacity(socket);
    // Before anything is read for it: a refusal here costs no database command.
    const waitMs = this.bucket.take();
    if (waitMs > 0) {
      const refused = this.bucket.refused;
      if (refused === 1 || refused % 1000 === 0) {
        this.deps.logger.warn({ refused }, 'WebSocket refused: upgrades above WS_UPGRADE_RATE (reconnect storm?)');
      }
      return rejectUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': String(Math.ceil(waitMs / 1000)) });
    }
    this.upgrading++;
    void this.admit(req, socket, new Connection(this, clientIp(req, this.deps.trustProxy)), accept);
  }

  /** @internal (Connection) An upgrade in progress ended (opened or not). */
  upgradeDone(): void {
    this.upgrading--;
  }

  private async admit(
    req: UpgradeRequest,
    socket: Duplex,
    slot: Connection,
    accept: (connection: Connection) => void,
  ): Promise<void> {
    const { config, limits, origins, users, sessionMiddleware, sessionSecret, logger } = this.deps;
    const ip = slot.ip;
    try {
      const refusal = await checkUpgrade(req, ip, { origins, limits });
      if (refusal) {
        slot.done();
        return rejectUpgrade(socket, refusal.status, refusal.message, refusal.headers);
      }
      const connectionId = randomUUID();
      let counted = false;
      const count = async (keys: { ip: string; user: string }): Promise<boolean> => {
        if (await this.deps.connections.acquire(connectionId, keys)) return false;
        counted = true;
        slot.counted(socket, connectionId, keys.user);
        return true;
      };
      const solution = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get(POW_QUERY_PARAM) ?? undefined;
      const beforeCreate = async (userId: string) => {
        await this.deps.identityGate.admit(ip, solution, () => limits.consume('identities', { ip }));
        // The connection is counted before the identity exists: a refusal leaves no user behind
        // (the client never gets its cookie, so it would only make another).
        if (!(await count({ ip, user: userId }))) throw new TooManyConnections();
      };
      const { identity, setCookie } = await upgradeIdentity(req, sessionMiddleware, users, config, sessionSecret, {
        beforeCreate,
      });
      if (!counted && !(await count({ ip, user: identity.user.id }))) throw new TooManyConnections();
      if (socket.destroyed) return slot.done();
      // The session id is a slice of the cookie header (which it would keep alive as long as
      // the connection): a flat copy of its own.
      identity.sessionId = flat(identity.sessionId);
      slot.identity = identity;
      slot.setCookie = setCookie;
      req.anonymo = slot;
      accept(slot);
    } catch (err) {
      slot.done();
      if (err instanceof TooManyConnections) {
        return rejectUpgrade(socket, 429, 'Too Many Open Connections', { 'Retry-After': '30' });
      }
      if (err instanceof PowRequiredError) {
        return rejectUpgrade(socket, 403, 'Proof Of Work Required', {}, formatGraphQLError(err, this.deps.format));
      }
      if (err instanceof RateLimitedError) {
        const { status, message, headers } = tooManyRequests(Number(err.extensions.retryAfterMs));
        return rejectUpgrade(socket, status, message, headers);
      }
      if (isDatabaseUnavailable(err)) return rejectUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': '2' });
      logger.error({ err }, 'WebSocket upgrade failed');
      rejectUpgrade(socket, 500, 'Internal Server Error');
    }
  }
}
