/**
 * Request and connection logs. Every line carries the request or connection id and, once
 * known, the user id, so one person's trouble can be followed through the logs without
 * ever logging what they wrote: no bodies, variables, query strings (GET /graphql carries
 * the operation there), headers or cookies.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { WebSocket } from 'ws';
import { onSocketClose } from '../realtime/socket-close';

/**
 * An `X-Request-Id` from a proxy is kept when it is a short token of safe characters (it is
 * echoed in a response header and written to logs); anything else is replaced.
 */
const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

/** Paths polled by probes and scrapers: logged only when they fail. */
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

/** The request id pino-http assigned (also sent back as `X-Request-Id`). */
export function requestIdOf(req: unknown): string | undefined {
  const id = (req as LoggedRequest).id;
  return typeof id === 'string' ? id : undefined;
}

/** express middleware: one log line per HTTP request, with request id, user id and status. */
export function httpLogger(logger: Logger): RequestHandler {
  return pinoHttp<IncomingMessage, ServerResponse>({
    logger,
    genReqId: (req, res) => {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    autoLogging: { ignore: (req) => QUIET_PATHS.has(pathOf(req)) },
    // Serializers see the raw objects: pick fields instead of redacting a full dump.
    wrapSerializers: false,
    serializers: {
      req: (req: LoggedRequest) => ({ id: req.id, method: req.method, path: pathOf(req) }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
    // Evaluated when the response finishes, after the session (and a new identity) exists.
    customProps: (req: LoggedRequest) => {
      const props: Record<string, string> = {};
      const userId = req.session?.userId;
      if (userId) props.userId = userId;
      const op = operationName(req);
      if (op) props.operation = op;
      return props;
    },
    customLogLevel: (_req, res, err) =>
      err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    customSuccessMessage: (req, res) => `${req.method} ${pathOf(req)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${pathOf(req)} ${res.statusCode}`,
  });
}

/** Logs a WebSocket connection's start and end with its connection id and user id. */
export function logConnection(logger: Logger, socket: WebSocket, info: { connectionId: string; userId: string }): void {
  const opened = Date.now();
  // No child logger: one lives as long as its connection (a Pino instance and its bindings
  // for every idle subscriber); the two lines carry the ids themselves.
  const { connectionId, userId } = info;
  logger.info({ connectionId, userId }, 'WebSocket connected');
  onSocketClose(socket, (code) => {
    logger.info({ connectionId, userId, code, durationMs: Date.now() - opened }, 'WebSocket closed');
  });
}
