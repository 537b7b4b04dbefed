/**
 * Request and connection logs. Every line carries the request or connection id and, once
 * known, the user id, so one person's trouble can be followed through the logs without
 * ever logging what they wrote: no bodies, variables, query strings (GET /graphql carries
 * the operation there), headers or cookies.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

/**
 * An `X-Request-Id` from a proxy is kept when it is a short token of safe characters (it is
 * echoed in a response header and written to logs); anything else is replaced.
 */
const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

/** Paths polled by probes and scrapers every few seconds: not logged (their results are the record). */
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

type LoggedRequest = IncomingMessage & {
  id?: unknown;
  originalUrl?: string;
  body?: unknown;
  query?: unknown;
  session?: { userId?: string };
};

function pathOf(req: LoggedRequest): string {
  return (req.originalUrl ?? req.url ?? '/').split('?')[0];
}

/** The operation's name only (never its text or variables), when it is a plain GraphQL name. */
function operationName(req: LoggedRequest): string | undefined {
  const fromBody = (req.body as { operationName?: unknown } | undefined)?.operationName;
  const fromQuery = (req.query as { operationName?: unknown } | undefined)?.operationName;
  const name = typeof fromBody === 'string' ? fromBody : fromQuery;
  return typeof name === 'string' && OPERATION_NAME.test(name) ? name : undefined;
}

/** The request id {@link httpLogger} assigned (also sent back as `X-Request-Id`). */
export function requestIdOf(req: unknown): string | undefined {
  const id = (req as LoggedRequest).id;
  return typeof id === 'string' ? id : undefined;
}

type Level = 'info' | 'warn' | 'error';

function levelOf(statusCode: number): Level {
  return statusCode >= 500 ? 'error' : statusCode >= 400 ? 'warn' : 'info';
}

/**
 * express middleware: one log line per HTTP request, with request id, user id and status.
 *
 * Not pino-http: it builds two or three child loggers per request (each serialising and
 * redacting its bindings) whether or not the line is written, a measurable share of a
 * GraphQL request's CPU. Here a request costs an id, a header and one listener; the line
 * (the fields pino-http wrote: `req`, `res`, `responseTime`, `userId`, `operation`, and `err`
 * for a 5xx) is built only when its level is enabled.
 */
export function httpLogger(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    const lreq = req as unknown as LoggedRequest;
    lreq.id = id;
    if (QUIET_PATHS.has(pathOf(lreq))) return next();
    const start = Date.now();
    // 'close' follows every response, finished or cut off (Node 16+): one listener is enough.
    const done = () => {
      const level = levelOf(res.statusCode);
      if (!logger.isLevelEnabled(level)) return;
      const line: Record<string, unknown> = { req: { id, method: req.method, path: pathOf(lreq) } };
      const userId = lreq.session?.userId;
      if (userId) line.userId = userId;
      const op = operationName(lreq);
      if (op) line.operation = op;
      line.res = { statusCode: res.statusCode };
      line.responseTime = Date.now() - start;
      if (res.statusCode >= 500) line.err = new Error(`failed with status code ${res.statusCode}`);
      logger[level](line, `${req.method} ${pathOf(lreq)} ${res.statusCode}`);
    };
    res.once('close', done);
    next();
  };
}

/**
 * A WebSocket's two log lines, opened and closed. No child logger: one would live as long as
 * its connection (a Pino instance and its bindings for every idle subscriber); the lines
 * carry the ids themselves. The caller keeps what the closing line needs.
 */
export function logConnected(logger: Logger, connectionId: string, userId: string): void {
  logger.info({ connectionId, userId }, 'WebSocket connected');
}

export function logClosed(
  logger: Logger,
  connectionId: string,
  userId: string,
  code: number,
  durationMs: number,
): void {
  logger.info({ connectionId, userId, code, durationMs }, 'WebSocket closed');
}
