/**
 * Builds one Anonymo server: express + Apollo Server at /graphql, graphql-ws on the same
 * HTTP server, port and path, sessions for both, and the drain sequence for shutdown.
 */
import 'reflect-metadata';
import './sessions/session.types';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type ErrorRequestHandler, type Request } from 'express';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from './config';
import { createLoaders, type Context, type Loaders } from './context';
import { connectDatabase, type Database } from './db/database';
import {
  ErrorCode,
  RateLimitedError,
  ServiceUnavailableError,
  formatError,
  formatGraphQLError,
  isDatabaseUnavailable,
  type FormatOptions,
} from './errors';
import { createLogger } from './logger';
import { Topic, type PubSub, type SessionRevokedPayload } from './pubsub';
import { destroyOnError, releaseUpgradeRequest } from './realtime/connection-memory';
import { guardClientFrames } from './realtime/frame-guard';
import { OperationIds } from './realtime/operation-ids';
import { startKeepAlive } from './realtime/keepalive';
import { createPubSub } from './realtime/transport';
import { createSchema } from './schema';
import { createServices, ensureIndexes, type Services } from './services';
import { costError } from './security/cost';
import { documentSizeMiddleware, operationGuardPlugin } from './security/graphql-guard';
import { httpRateLimit, originMiddleware } from './security/http';
import { clientIp } from './security/ip';
import { OriginPolicy } from './security/origin';
import { rateLimitedError } from './security/rate-limit';
import { checkUpgrade, tooManyRequests } from './security/upgrade';
import {
  createSessionMiddleware,
  resolveIdentity,
  upgradeIdentity,
  type Identity,
  type SessionRequest,
} from './sessions/identity';
import { MongoSessionStore } from './sessions/session.store';
import { AVATAR_SEED, avatarSvg } from './users/avatar';
import { SESSION_REVOKED_CLOSE } from './users/identity.service';
import { extraValidationRules, OperationValidator } from './validation';
import { httpLogger, logConnection, requestIdOf } from './observability/http-logger';
import { Metrics } from './observability/metrics';
import { startMetricsServer, type MetricsServer } from './observability/metrics-server';
import { DEFAULT_PAGE_SIZE } from './messages/message.service';
import { CONVERSATIONS_MAX } from './conversations/conversation.service';
import { ONLINE_USERS_MAX } from './presence/presence.service';
import { landingPagePlugin } from './web/sandbox';
import { webClient } from './web/web-client';

export interface ServerOptions {
  config: Config;
  /** Where the database is (resolved by main.ts: MONGODB_URI or the embedded one). */
  mongodbUri: string;
  /** Signs session cookies (resolved by main.ts: SESSION_SECRET or the generated one). */
  sessionSecret: string;
  logger?: Logger;
  /** Cross-instance transport; default from the config (Redis with REDIS_URL, else in-process). */
  pubsub?: PubSub;
}

export interface AnonymoServer {
  /** http://host:port/graphql */
  url: string;
  /** ws://host:port/graphql */
  wsUrl: string;
  port: number;
  services: Services;
  /** Live counters for metrics and tests. */
  stats(): { connections: number; refusedForCapacity: number };
  /** This instance's Prometheus registry (served at /metrics on METRICS_PORT). */
  metrics: Metrics;
  /** http://METRICS_HOST:port/metrics, unless METRICS_PORT=off. */
  metricsUrl?: string;
  /** Stops accepting, drains, closes WebSockets with 1001 and the database. Idempotent. */
  close(): Promise<void>;
}

/** What the upgrade handler learned about a WebSocket connection. */
interface UpgradeInfo {
  identity: Identity;
  setCookie?: string;
  connectionId: string;
  ip: string;
}
type UpgradeRequest = IncomingMessage & { anonymo?: UpgradeInfo };

function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ message }] });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  );
}

export async function createServer(options: ServerOptions): Promise<AnonymoServer> {
  const { config, sessionSecret } = options;
  const logger = options.logger ?? createLogger(config);
  const metrics = new Metrics();
  const pubsub = metrics.observePubSub(options.pubsub ?? (await createPubSub(config, logger)));
  const format: FormatOptions = {
    includeStack: !config.isProduction,
    hideSuggestions: config.security.hideSuggestions,
    onInternalError: (err) => logger.error({ err }, 'internal error'),
  };

  const db: Database = await connectDatabase({ uri: options.mongodbUri, timeoutMs: config.dbTimeoutMs, logger });
  await ensureIndexes(db);
  const sessionStore = new MongoSessionStore({ connection: db.connection, kind: db.kind, ttlMs: config.session.ttlMs });
  await sessionStore.init();
  const services = await createServices({ config, logger, db, pubsub, format, onDelivered: metrics.delivered });
  const schema = await createSchema(services);
  services.realtime.setSchema(schema);
  await services.presence.start();

  const app = express();
  app.disable('x-powered-by');
  app.use(httpLogger(logger));
  if (config.trustProxy !== undefined) app.set('trust proxy', config.trustProxy);
  const httpServer = createHttpServer(app);
  const sessionMiddleware = createSessionMiddleware(config, sessionStore, sessionSecret);
  const origins = new OriginPolicy(config.security);
  const { limits } = services;
  let shuttingDown = false;

  // WebSocket: graphql-ws over ws, on the HTTP server's upgrade event for /graphql.
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.security.maxWsPayloadBytes });
  guardClientFrames(wss);
  const validator = new OperationValidator(schema, config);
  const operationIds = new OperationIds();
  const { maxCost, maxDocumentBytes } = config.security.operations;
  // List fields priced by the size they return when the client gives none (security/cost.ts).
  const listSizes = { messages: DEFAULT_PAGE_SIZE, onlineUsers: ONLINE_USERS_MAX, conversations: CONVERSATIONS_MAX };
  const wsServer = useServer<Record<string, unknown>, { socket: WebSocket; request: UpgradeRequest }>(
    {
      schema,
      onSubscribe: async (ctx, id, payload) => {
        metrics.wsOperationStarted(ctx, id);
        if (!operationIds.claim(ctx, id, payload)) {
          // As graphql-ws does for an id in use: reusing one before its operation ended is a
          // protocol error (an error answer would let graphql-ws drop the first operation's id).
          ctx.extra.socket.close(4409, `Subscriber for ${id} already exists`);
          return [
            new GraphQLError(`Subscriber for ${id} already exists`, { extensions: { code: ErrorCode.BAD_REQUEST } }),
          ];
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
        const info = ctx.extra.request.anonymo!;
        const wait = await limits.retryAfter('wsOperations', { connection: info.connectionId });
        if (wait > 0) return [rateLimitedError('wsOperations', wait)];
        const document = validator.check(payload.query);
        if (Array.isArray(document)) return document;
        const variables = payload.variables ?? {};
        const tooCostly = costError(document, payload.operationName, variables, maxCost, listSizes);
        if (tooCostly) return [tooCostly];
        let loaders: Loaders | undefined;
        const contextValue: Context = {
          user: info.identity.user,
          sessionId: info.identity.sessionId,
          transport: 'ws',
          requestId: info.connectionId,
          ip: info.ip,
          // Created on first use: fan-out subscriptions never load through them.
          get loaders() {
            return (loaders ??= createLoaders(services.users));
          },
          services,
          ws: {
            socket: ctx.extra.socket,
            subscriptionId: id,
            query: payload.query,
            document,
            operationName: payload.operationName,
            variables,
          },
        };
        const args: ExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: variables,
          contextValue,
        };
        return args;
      },
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
    0, // keepalive: one shared timer instead of graphql-ws's per-connection ones (below)
  );
  const stopKeepAlive = startKeepAlive(wss, config.wsKeepAliveMs);

  wss.on('headers', (headers, req: UpgradeRequest) => {
    if (req.anonymo?.setCookie) headers.push(`Set-Cookie: ${req.anonymo.setCookie}`);
  });
  // Open sockets by session, to close them when the session ends (identity reset).
  const socketsBySession = new Map<string, Set<WebSocket>>();
  wss.on('connection', (socket: WebSocket, req: UpgradeRequest) => {
    // graphql-ws reports socket errors with console.error; an oversized or malformed frame is
    // the client's fault (ws closes that socket itself, e.g. 1009), and must not flood the logs.
    socket.removeAllListeners('error');
    socket.on('error', (err) => logger.debug({ err }, 'WebSocket error'));
    const { user, sessionId } = req.anonymo!.identity;
    logConnection(logger, socket, { connectionId: req.anonymo!.connectionId, userId: user.id });
    services.presence.connected(user);
    let set = socketsBySession.get(sessionId);
    if (!set) socketsBySession.set(sessionId, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      services.presence.disconnected(user);
      set!.delete(socket);
      if (set!.size === 0 && socketsBySession.get(sessionId) === set) socketsBySession.delete(sessionId);
    });
    releaseUpgradeRequest(req);
  });
  const stopRevocations = await pubsub.subscribe<SessionRevokedPayload>(Topic.sessionRevoked, ({ sessionId }) => {
    for (const socket of socketsBySession.get(sessionId) ?? []) {
      socket.close(SESSION_REVOKED_CLOSE.code, SESSION_REVOKED_CLOSE.reason);
    }
  });

  // Capacity: connections open plus upgrades in progress, so a burst cannot overshoot.
  let upgrading = 0;
  let refusedForCapacity = 0;
  const atCapacity = () => wss.clients.size + upgrading >= config.maxConnections;

  httpServer.on('upgrade', (req: UpgradeRequest, socket: Duplex, head: Buffer) => {
    socket.on('error', destroyOnError);
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname !== '/graphql') return rejectUpgrade(socket, 404, 'Not Found');
    if (shuttingDown) return rejectUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': '5' });
    if (atCapacity()) {
      refusedForCapacity++;
      // One line per refusal would let a flood flood the logs too: the first, then every 100th.
      if (refusedForCapacity === 1 || refusedForCapacity % 100 === 0) {
        logger.warn(
          { refused: refusedForCapacity, limit: config.maxConnections },
          'WebSocket refused: server at MAX_CONNECTIONS',
        );
      }
      return rejectUpgrade(socket, 503, 'Server at capacity', { 'Retry-After': '5' });
    }
    upgrading++;
    let counted = true;
    const done = () => {
      if (counted) upgrading--;
      counted = false;
    };
    const ip = clientIp(req, app.get('trust proxy fn'));
    const beforeCreate = () => limits.consume('identities', { ip });
    checkUpgrade(req, ip, { origins, limits })
      .then(async (refusal) => {
        if (refusal) {
          done();
          return rejectUpgrade(socket, refusal.status, refusal.message, refusal.headers);
        }
        const { identity, setCookie } = await upgradeIdentity(
          req,
          sessionMiddleware,
          services.users,
          config,
          sessionSecret,
          { beforeCreate },
        );
        const connectionId = randomUUID();
        const keys = { ip, user: identity.user.id };
        if (await services.connections.acquire(connectionId, keys)) {
          done();
          return rejectUpgrade(socket, 429, 'Too Many Open Connections', { 'Retry-After': '30' });
        }
        // The raw socket closes after a failed upgrade and after the WebSocket's own close.
        socket.once('close', () => services.connections.release(connectionId, keys));
        if (socket.destroyed) return done();
        req.anonymo = { identity, setCookie, connectionId, ip };
        wss.handleUpgrade(req, socket, head, (ws) => {
          done();
          wss.emit('connection', ws, req);
        });
        // handleUpgrade answers some bad requests itself without calling back.
        socket.once('close', done);
      })
      .catch((err) => {
        done();
        if (err instanceof RateLimitedError) {
          const { status, message, headers } = tooManyRequests(Number(err.extensions.retryAfterMs));
          return rejectUpgrade(socket, status, message, headers);
        }
        if (isDatabaseUnavailable(err))
          return rejectUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': '2' });
        logger.error({ err }, 'WebSocket upgrade failed');
        rejectUpgrade(socket, 500, 'Internal Server Error');
      });
  });

  const apollo = new ApolloServer<Context>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: !config.isProduction,
    validationRules: extraValidationRules(config),
    parseOptions: { maxTokens: config.security.operations.maxTokens },
    formatError: (formatted, error) => formatError(formatted, error, format),
    // main.ts owns the signals and calls close(), which stops Apollo in the right order.
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownTimeoutMs }),
      metrics.apolloPlugin(),
      operationGuardPlugin({ maxDocumentBytes, maxCost, listSizes }),
      landingPagePlugin(config.isProduction),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              // Close WebSockets with 1001 "Going away" before HTTP requests drain.
              services.realtime.close();
              stopKeepAlive();
              await wsServer.dispose();
            },
          };
        },
      },
    ],
  });
  await apollo.start();

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (shuttingDown) return void res.status(503).json({ status: 'shutting down' });
    try {
      await db.ping();
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'database unavailable' });
    }
  });
  app.get('/avatars/:file', (req, res) => {
    const m = /^(.+)\.svg$/.exec(req.params.file);
    if (!m || !AVATAR_SEED.test(m[1])) return void res.status(404).end();
    res
      .type('image/svg+xml')
      .set('Cache-Control', 'public, max-age=31536000, immutable')
      .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(avatarSvg(m[1], m[1]));
  });
  app.use(
    '/graphql',
    ...originMiddleware(origins),
    httpRateLimit(limits),
    express.json({ limit: config.security.maxBodyBytes }),
    documentSizeMiddleware(maxDocumentBytes, config.security.operations.maxTokens),
    sessionMiddleware,
    expressMiddleware(apollo, {
      context: async ({ req }): Promise<Context> => {
        let identity: Identity;
        try {
          identity = await resolveIdentity(req as unknown as SessionRequest, services.users, {
            beforeCreate: async () => {
              const wait = await limits.retryAfter('identities', { ip: req.ip });
              if (wait > 0) throw rateLimitedError('identities', wait, true);
            },
          });
        } catch (err) {
          if (isDatabaseUnavailable(err)) throw new ServiceUnavailableError();
          throw err;
        }
        return {
          user: identity.user,
          sessionId: identity.sessionId,
          transport: 'http',
          requestId: requestIdOf(req) ?? randomUUID(),
          ip: (req as Request).ip ?? '',
          loaders: createLoaders(services.users),
          services,
          sessionControl: {
            regenerate: (userId) =>
              new Promise<void>((resolve, reject) => {
                const sreq = req as unknown as SessionRequest;
                sreq.session.regenerate((err) => {
                  if (err) return reject(err);
                  sreq.session.userId = userId;
                  resolve();
                });
              }),
          },
        };
      },
    }),
  );
  const client = webClient({ logger });
  if (client) app.use(client);
  // Errors before Apollo (malformed JSON, oversized bodies, the session store unreachable)
  // get a GraphQL-shaped answer, not express's HTML page.
  const jsonErrors: ErrorRequestHandler = (err, _req, res, _next) => {
    if (isDatabaseUnavailable(err)) {
      res.status(503).set('Retry-After', '2');
      return void res.json({
        errors: [
          { message: new ServiceUnavailableError().message, extensions: { code: ErrorCode.SERVICE_UNAVAILABLE } },
        ],
      });
    }
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) logger.error({ err }, 'request failed');
    // Fixed texts: body-parser's messages quote request headers (e.g. the charset).
    const message =
      status === 413
        ? `Request body larger than ${config.security.maxBodyBytes} bytes`
        : status === 415
          ? 'Unsupported content type or charset (send application/json in UTF-8)'
          : status === 500
            ? 'Internal server error'
            : 'Malformed request body';
    res.status(status).json({
      errors: [
        { message, extensions: { code: status === 500 ? ErrorCode.INTERNAL_SERVER_ERROR : ErrorCode.BAD_REQUEST } },
      ],
    });
  };
  app.use(jsonErrors);

  let metricsServer: MetricsServer | undefined;
  if (config.metrics.port !== null) {
    metricsServer = await startMetricsServer(metrics, { port: config.metrics.port, host: config.metrics.host });
  }
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
  metrics.setSources({
    connections: () => wss.clients.size,
    subscriptions: () => services.realtime.stats().subscribers,
    databaseUp: () => db.isConnected(),
  });
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  logger.info({ port, database: db.kind }, `Anonymo listening on http://${host}:${port}/graphql`);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      shuttingDown = true;
      logger.info('shutting down');
      // Apollo's stop(): our drainServer hook closes WebSockets with 1001, then the HTTP
      // server stops accepting and in-flight requests finish (or are cut after the timeout).
      await apollo.stop();
      await metricsServer?.close();
      // Operations that arrived over WebSocket may still be writing: let them finish.
      await services.messages.drain(config.shutdownTimeoutMs);
      await services.close();
      stopRevocations();
      sessionStore.close();
      await pubsub.close();
      await db.close();
      logger.info('stopped');
    })());

  return {
    url: `http://${host}:${port}/graphql`,
    wsUrl: `ws://${host}:${port}/graphql`,
    port,
    services,
    stats: () => ({ connections: wss.clients.size, refusedForCapacity }),
    metrics,
    metricsUrl: metricsServer?.url,
    close,
  };
}
