/**
 * The HTTP transport: the express app (health, readiness, avatars, the web client),
 * Apollo Server at /graphql with the same Context as WebSocket operations (context.ts), and
 * the one JSON error body for everything that fails before Apollo.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { Context } from '../context';
import {
  ErrorCode,
  ServiceUnavailableError,
  formatError,
  isDatabaseUnavailable,
  serviceUnavailableStatusPlugin,
  type FormatOptions,
} from '../errors';
import { httpLogger, requestIdOf } from '../observability/http-logger';
import type { Metrics } from '../observability/metrics';
import type { DefaultListSizes } from '../security/cost';
import { documentSizeMiddleware, operationGuardPlugin } from '../security/graphql-guard';
import { httpRateLimit, originMiddleware } from '../security/http';
import type { OriginPolicy } from '../security/origin';
import { httpIdentityBudget, POW_HEADER, type IdentityGate } from '../security/pow';
import type { RateLimits } from '../security/rate-limit';
import { resolveIdentity, type Identity, type SessionRequest } from '../sessions/identity';
import { AVATAR_SEED, avatarSvg } from '../users/avatar';
import type { UserService } from '../users/user.service';
import { apolloDocumentStore, extraValidationRules } from '../validation';
import { landingPagePlugin } from '../web/sandbox';
import { webClient } from '../web/web-client';
import { createContext } from './context';
import type { HttpDrain } from './http-drain';

/** The express app with its settings; routes are added by {@link startHttpTransport}. */
export function createExpressApp(config: Config, logger: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  // No ETag on dynamic responses: GraphQL answers are `no-store` and avatars immutable, so a
  // hash of every body (sha1 per response) would never save a transfer. The web client's
  // static files keep theirs (serve-static sets its own).
  app.set('etag', false);
  app.use(httpLogger(logger));
  if (config.trustProxy !== undefined) app.set('trust proxy', config.trustProxy);
  return app;
}

export interface HttpTransportDeps {
  config: Config;
  logger: Logger;
  schema: GraphQLSchema;
  format: FormatOptions;
  metrics: Metrics;
  /** List fields' sizes when the client gives none, for the cost limit (security/cost.ts). */
  listSizes: DefaultListSizes;
  users: UserService;
  limits: RateLimits;
  /** Whether a new identity may be created (identity budget, proof of work). */
  identityGate: IdentityGate;
  origins: OriginPolicy;
  sessionMiddleware: RequestHandler;
  /** Whether the database answers (readiness). */
  ping(): Promise<void>;
  isShuttingDown(): boolean;
  /** Runs when Apollo starts draining, before HTTP requests drain (closes WebSockets). */
  onDrain: () => Promise<void>;
  /** Stops the HTTP server when Apollo drains (http-drain.ts). */
  drain: HttpDrain;
  /** Cuts the WebSockets still open when the drain's grace period is over. */
  cutWebSockets: () => void;
}

/** Starts Apollo Server and mounts every route on `app`; resolves with Apollo (stop() drains). */
export async function startHttpTransport(
  app: Express,
  httpServer: Server,
  deps: HttpTransportDeps,
): Promise<ApolloServer<Context>> {
  const { config, format } = deps;
  const apollo = new ApolloServer<Context>({
    schema: deps.schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: !config.isProduction,
    validationRules: extraValidationRules(config),
    parseOptions: { maxTokens: config.security.operations.maxTokens },
    documentStore: apolloDocumentStore(),
    formatError: (formatted, error) => formatError(formatted, error, format),
    // main.ts owns the signals and calls close(), which stops Apollo in the right order.
    stopOnTerminationSignals: false,
    plugins: [
      // No response is cacheable (every one depends on the session): instead of Apollo's
      // cache-control plugin, which computes a policy in a hook around every field resolved
      // only to arrive at `no-store`, the header is set directly (noStore, below).
      ApolloServerPluginCacheControlDisabled(),
      // Apollo installs inline tracing (federation) by default and asks it about every request
      // even when the schema is no subgraph, as ours never is.
      ApolloServerPluginInlineTraceDisabled(),
      deps.drain.plugin(config.shutdownTimeoutMs, deps.cutWebSockets),
      deps.metrics.apolloPlugin(),
      serviceUnavailableStatusPlugin(),
      operationGuardPlugin({
        maxDocumentBytes: config.security.operations.maxDocumentBytes,
        maxCost: config.security.operations.maxCost,
        listSizes: deps.listSizes,
      }),
      landingPagePlugin(config.isProduction),
      {
        serverWillStart() {
          // Close WebSockets with 1001 "Going away" before HTTP requests drain.
          return Promise.resolve({ drainServer: deps.onDrain });
        },
      },
    ],
  });
  await apollo.start();
  const commandScope = deps.metrics.dbCommands.middleware();
  // First: every GraphQL request would otherwise be matched against the routes below in turn.
  app.use(
    '/graphql',
    inSequence([
      noStore,
      commandScope.begin,
      ...originMiddleware(deps.origins),
      httpRateLimit(deps.limits),
      express.json({ limit: config.security.maxBodyBytes }),
      commandScope.resume,
      documentSizeMiddleware(config.security.operations.maxDocumentBytes, config.security.operations.maxTokens),
      deps.sessionMiddleware,
      expressMiddleware(apollo, { context: ({ req }) => httpContext(req, deps) }),
    ]),
  );
  mountRoutes(app, deps);
  const client = webClient({ logger: deps.logger });
  if (client) app.use(client);
  app.use(jsonErrors(config, deps.logger));
  return apollo;
}

/**
 * Middlewares run one after the other as one router layer, with express's semantics (an error
 * passed to `next`, thrown or rejected leaves the sequence for the error handlers). Express's
 * router pays for every layer on every request (path match, prefix trim and restore, debug
 * calls, closures): as nine layers, /graphql's middlewares were ~10 % of the allocation of an
 * HTTP send (docs/PERFORMANCE.md).
 */
export function inSequence(handlers: readonly RequestHandler[]): RequestHandler {
  return (req, res, done) => {
    let i = 0;
    const next = (err?: unknown): void => {
      if (err) return done(err);
      const handler = handlers[i++];
      if (!handler) return done();
      try {
        const result: unknown = handler(req, res, next);
        if (result instanceof Promise) result.catch((error: unknown) => done(error ?? new Error('Rejected promise')));
      } catch (error) {
        done(error);
      }
    };
    next();
  };
}

/**
 * `Cache-Control: no-store` on every /graphql response, as Apollo's cache-control plugin sent
 * without hints. A header on the response before Apollo runs, not a plugin: each plugin that
 * hooks requests is awaited at every stage of every request's pipeline.
 */
const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

function mountRoutes(app: Express, deps: HttpTransportDeps): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (deps.isShuttingDown()) return void res.status(503).json({ status: 'shutting down' });
    try {
      await deps.ping();
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
}

/** The Context of an HTTP operation: the session's identity (created on first contact, rate-limited per address). */
async function httpContext(req: Request, deps: HttpTransportDeps): Promise<Context> {
  const sreq = req as unknown as SessionRequest;
  let identity: Identity;
  const powSolution = req.get(POW_HEADER);
  const ip = req.ip ?? '';
  try {
    identity = await resolveIdentity(sreq, deps.users, {
      beforeCreate: () => deps.identityGate.admit(ip, powSolution, () => httpIdentityBudget(deps.limits, ip)),
    });
  } catch (err) {
    if (isDatabaseUnavailable(err)) throw new ServiceUnavailableError();
    throw err;
  }
  return createContext(
    {
      identity,
      transport: 'http',
      requestId: requestIdOf(req) ?? randomUUID(),
      ip,
      powSolution,
      moderatorToken: /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1],
      sessionControl: {
        regenerate: (userId) =>
          new Promise<void>((resolve, reject) => {
            sreq.session.regenerate((err) => {
              if (err) return reject(err as Error);
              sreq.session.userId = userId;
              resolve();
            });
          }),
      },
    },
    deps.users,
  );
}

/**
 * Errors before Apollo (malformed JSON, oversized bodies, the session store unreachable) get
 * a GraphQL-shaped answer, not express's HTML page.
 */
function jsonErrors(config: Config, logger: Logger): ErrorRequestHandler {
  return (err: { status?: unknown; message?: unknown }, _req, res, _next) => {
    void _next;
    if (res.headersSent) {
      // express-session saves or touches a session once the answer is written, and reports a
      // failure here: the client has its answer (often a 503 already) and nothing more can be
      // sent. A database away is expected during an outage (the next request writes the
      // session again); anything else is a fault. The socket goes if the answer is unfinished.
      if (isDatabaseUnavailable(err))
        logger.warn({ err }, 'session not written after the response: database unavailable');
      else logger.error({ err }, 'request failed after its response was sent');
      if (!res.writableEnded) res.destroy();
      return;
    }
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
}
