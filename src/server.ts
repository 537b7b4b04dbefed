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
import { ErrorCode, ServiceUnavailableError, formatError, formatGraphQLError, isDatabaseUnavailable, type FormatOptions } from './errors';
import { createLogger } from './logger';
import type { PubSub } from './pubsub';
import { destroyOnError, releaseUpgradeRequest } from './realtime/connection-memory';
import { startKeepAlive } from './realtime/keepalive';
import { createPubSub } from './realtime/transport';
import { createSchema } from './schema';
import { createServices, ensureIndexes, type Services } from './services';
import { createSessionMiddleware, resolveIdentity, upgradeIdentity, type Identity, type SessionRequest } from './sessions/identity';
import { MongoSessionStore } from './sessions/session.store';
import { AVATAR_SEED, avatarSvg } from './users/avatar';
import { extraValidationRules, OperationValidator } from './validation';

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

const MAX_BODY_BYTES = 64 * 1024;
const MAX_WS_PAYLOAD_BYTES = 64 * 1024;

function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ message }] });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  );
}

export async function createServer(options: ServerOptions): Promise<AnonymoServer> {
  const { config, sessionSecret } = options;
  const logger = options.logger ?? createLogger(config);
  const pubsub = options.pubsub ?? (await createPubSub(config, logger));
  const format: FormatOptions = {
    includeStack: !config.isProduction,
    onInternalError: (err) => logger.error({ err }, 'internal error'),
  };

  const db: Database = await connectDatabase({ uri: options.mongodbUri, timeoutMs: config.dbTimeoutMs, logger });
  await ensureIndexes(db);
  const sessionStore = new MongoSessionStore({ connection: db.connection, kind: db.kind, ttlMs: config.session.ttlMs });
  await sessionStore.init();
  const services = await createServices({ config, logger, db, pubsub, format });
  const schema = await createSchema(services);
  services.realtime.setSchema(schema);
  await services.presence.start();

  const app = express();
  app.disable('x-powered-by');
  if (config.trustProxy !== undefined) app.set('trust proxy', config.trustProxy);
  const httpServer = createHttpServer(app);
  const sessionMiddleware = createSessionMiddleware(config, sessionStore, sessionSecret);
  let shuttingDown = false;

  // WebSocket: graphql-ws over ws, on the HTTP server's upgrade event for /graphql.
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_PAYLOAD_BYTES });
  const validator = new OperationValidator(schema, config);
  const wsServer = useServer<Record<string, unknown>, { socket: WebSocket; request: UpgradeRequest }>(
    {
      schema,
      onSubscribe: (ctx, id, payload) => {
        if (Object.keys(ctx.subscriptions).length > config.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(`At most ${config.maxSubscriptionsPerConnection} operations per connection`, {
              extensions: { code: ErrorCode.RATE_LIMITED },
            }),
          ];
        }
        const document = validator.check(payload.query);
        if (Array.isArray(document)) return document;
        const info = ctx.extra.request.anonymo!;
        const variables = payload.variables ?? {};
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
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors) return;
        return { ...result, errors: result.errors.map((e) => formatGraphQLError(e, format)) };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatGraphQLError(e, format)),
    },
    wss,
    0, // keepalive: one shared timer instead of graphql-ws's per-connection ones (below)
  );
  const stopKeepAlive = startKeepAlive(wss, config.wsKeepAliveMs);

  wss.on('headers', (headers, req: UpgradeRequest) => {
    if (req.anonymo?.setCookie) headers.push(`Set-Cookie: ${req.anonymo.setCookie}`);
  });
  wss.on('connection', (socket: WebSocket, req: UpgradeRequest) => {
    const { user } = req.anonymo!.identity;
    services.presence.connected(user);
    socket.once('close', () => services.presence.disconnected(user));
    releaseUpgradeRequest(req);
  });

  httpServer.on('upgrade', (req: UpgradeRequest, socket: Duplex, head: Buffer) => {
    socket.on('error', destroyOnError);
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname !== '/graphql') return rejectUpgrade(socket, 404, 'Not Found');
    if (shuttingDown) return rejectUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': '5' });
    upgradeIdentity(req, sessionMiddleware, services.users, config, sessionSecret)
      .then(({ identity, setCookie }) => {
        if (socket.destroyed) return;
        req.anonymo = { identity, setCookie, connectionId: randomUUID(), ip: req.socket.remoteAddress ?? '' };
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      })
      .catch((err) => {
        if (isDatabaseUnavailable(err)) return rejectUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': '2' });
        logger.error({ err }, 'WebSocket upgrade failed');
        rejectUpgrade(socket, 500, 'Internal Server Error');
      });
  });

  const apollo = new ApolloServer<Context>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: !config.isProduction,
    validationRules: extraValidationRules(config),
    formatError: (formatted, error) => formatError(formatted, error, format),
    // main.ts owns the signals and calls close(), which stops Apollo in the right order.
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownTimeoutMs }),
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
    sessionMiddleware,
    express.json({ limit: MAX_BODY_BYTES }),
    expressMiddleware(apollo, {
      context: async ({ req }): Promise<Context> => {
        let identity: Identity;
        try {
          identity = await resolveIdentity(req as unknown as SessionRequest, services.users);
        } catch (err) {
          if (isDatabaseUnavailable(err)) throw new ServiceUnavailableError();
          throw err;
        }
        return {
          user: identity.user,
          sessionId: identity.sessionId,
          transport: 'http',
          requestId: randomUUID(),
          ip: (req as Request).ip ?? '',
          loaders: createLoaders(services.users),
          services,
        };
      },
    }),
  );
  // Errors before Apollo (malformed JSON, oversized bodies) get a GraphQL-shaped answer, not HTML.
  const jsonErrors: ErrorRequestHandler = (err, _req, res, _next) => {
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) logger.error({ err }, 'request failed');
    const message =
      status === 413 ? `Request body larger than ${MAX_BODY_BYTES} bytes` : status === 400 ? 'Malformed request body' : status === 500 ? 'Internal server error' : String(err.message);
    res.status(status).json({ errors: [{ message, extensions: { code: status === 500 ? ErrorCode.INTERNAL_SERVER_ERROR : ErrorCode.BAD_REQUEST } }] });
  };
  app.use(jsonErrors);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
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
      // Operations that arrived over WebSocket may still be writing: let them finish.
      await services.messages.drain(config.shutdownTimeoutMs);
      services.presence.stop();
      sessionStore.close();
      await pubsub.close();
      await db.close();
      logger.info('stopped');
    })());

  return { url: `http://${host}:${port}/graphql`, wsUrl: `ws://${host}:${port}/graphql`, port, services, close };
}
