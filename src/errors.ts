/**
 * Error codes of the public contract and the one place that decides what an error looks
 * like to a client, for HTTP (Apollo's `formatError`) and WebSocket (graphql-ws hooks and
 * the subscription fan-out) alike. Anything not recognised here is masked as
 * INTERNAL_SERVER_ERROR: its message and stack never leave the server.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { hideSuggestions } from './security/limits';

export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  RATE_LIMITED: 'RATE_LIMITED',
  FORBIDDEN: 'FORBIDDEN',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  /** Refused by a content rule (BLOCKLIST_FILE, links from new identities). */
  CONTENT_BLOCKED: 'CONTENT_BLOCKED',
  /**
   * A new identity needs a solved proof-of-work challenge (POW_MODE): `extensions.challenge`
   * holds one, `extensions.reason` says why (missing, invalid, expired, replayed, too easy).
   */
  POW_REQUIRED: 'POW_REQUIRED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  /** Apollo Server's codes for documents that do not parse or validate; kept as clients know them. */
  GRAPHQL_PARSE_FAILED: 'GRAPHQL_PARSE_FAILED',
  GRAPHQL_VALIDATION_FAILED: 'GRAPHQL_VALIDATION_FAILED',
  BAD_REQUEST: 'BAD_REQUEST',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const PUBLIC_CODES = new Set<string>([
  ...Object.values(ErrorCode),
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/** Base class: an error whose message is safe to show to the client. */
export class AppError extends GraphQLError {
  constructor(message: string, code: ErrorCode, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extensions, code } });
    this.name = new.target.name;
  }
}

/** Validation failures, malformed or unknown ids, bad cursors. `field` names the argument. */
export class BadUserInputError extends AppError {
  constructor(message: string, field?: string) {
    super(message, ErrorCode.BAD_USER_INPUT, field ? { field } : {});
  }
}

export class RateLimitedError extends AppError {
  constructor(message: string, retryAfterMs: number) {
    super(message, ErrorCode.RATE_LIMITED, { retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)) });
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'Forbidden') {
    super(message, ErrorCode.FORBIDDEN);
  }
}

export class ContentBlockedError extends AppError {
  constructor(message: string) {
    super(message, ErrorCode.CONTENT_BLOCKED);
  }
}

export type PowRefusal = 'missing' | 'malformed' | 'invalid' | 'expired' | 'replayed' | 'too easy';

/** The request would create an identity and carries no usable proof of work (security/pow.ts). */
export class PowRequiredError extends AppError {
  constructor(reason: PowRefusal, challenge: string) {
    const why = reason === 'missing' ? 'required' : `solution ${reason}`;
    super(
      `Proof of work ${why} for a new identity: solve extensions.challenge (ALTCHA) and send the solution in the X-Anonymo-Pow header`,
      ErrorCode.POW_REQUIRED,
      // The whole request is refused (nothing was created): HTTP 403 like any refusal.
      { reason, challenge, http: { status: 403 } },
    );
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(message = 'The database is unavailable; try again shortly') {
    // Apollo answers 503 when this is the request's only error; load balancers understand that.
    super(message, ErrorCode.SERVICE_UNAVAILABLE, { http: { status: 503 } });
  }
}

const DB_UNAVAILABLE_ERRORS = new Set([
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
  'MongoOperationTimeoutError',
]);

/** True for driver errors that mean "the database cannot be reached right now". */
export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++) {
    if (DB_UNAVAILABLE_ERRORS.has(e.name)) return true;
    if (e.name === 'MongooseError' && /buffering timed out|Client must be connected/i.test(e.message)) {
      return true;
    }
    e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError;
  }
  return false;
}

/** The innermost error a resolver threw (graphql-js wraps it in a located GraphQLError). */
function unwrap(error: unknown): unknown {
  let e = error;
  while (e instanceof GraphQLError && e.originalError && e.originalError !== e) e = e.originalError;
  return e;
}

export interface FormatOptions {
  /** Adds the stack to INTERNAL_SERVER_ERROR details (never in production). */
  includeStack: boolean;
  /** Called with errors that get masked, for logging. */
  onInternalError?: (error: unknown) => void;
  /** Removes "Did you mean ...?" field suggestions from messages (production). */
  hideSuggestions?: boolean;
}

function clientMessage(message: string, options: FormatOptions): string {
  return options.hideSuggestions ? hideSuggestions(message) : message;
}

/**
 * Turns any error into what the client sees. `formatted` is graphql-js's rendering
 * (message, locations, path, extensions) of `error`.
 */
export function formatError(
  formatted: GraphQLFormattedError,
  error: unknown,
  options: FormatOptions,
): GraphQLFormattedError {
  const original = unwrap(error);
  const base = { locations: formatted.locations, path: formatted.path };

  if (original instanceof AppError) {
    // `http` is Apollo's status hint, applied to the response and not meant for the client.
    const { http: _http, ...extensions } = original.extensions;
    return { ...base, message: original.message, extensions };
  }
  if (original instanceof Error && original.name === 'ArgumentValidationError') {
    const details = (original as Error & { extensions?: { validationErrors?: unknown[] } }).extensions
      ?.validationErrors as
      Array<{ property: string; constraints?: Record<string, string>; children?: unknown[] }> | undefined;
    const first = details?.[0];
    const message = first?.constraints ? Object.values(first.constraints)[0] : 'Argument validation failed';
    return {
      ...base,
      message,
      extensions: { code: ErrorCode.BAD_USER_INPUT, ...(first ? { field: first.property } : {}) },
    };
  }
  if (isDatabaseUnavailable(original)) {
    return {
      ...base,
      message: new ServiceUnavailableError().message,
      extensions: { code: ErrorCode.SERVICE_UNAVAILABLE },
    };
  }
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && PUBLIC_CODES.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) {
    // graphql-js and Apollo errors about the request itself (parse, validation, variables).
    // Their messages only describe the client's document.
    const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, message: clientMessage(formatted.message, options), extensions };
  }
  if (error instanceof GraphQLError && !error.path && (!error.originalError || original instanceof GraphQLError)) {
    // Raised by graphql-js about the request itself (e.g. variable coercion over WebSocket,
    // where a scalar's own GraphQLError is the originalError), not by a resolver: the
    // message only describes the client's input.
    return { ...base, message: clientMessage(error.message, options), extensions: { code: ErrorCode.BAD_USER_INPUT } };
  }
  options.onInternalError?.(original);
  return {
    ...base,
    message: 'Internal server error',
    extensions: {
      code: ErrorCode.INTERNAL_SERVER_ERROR,
      ...(options.includeStack && original instanceof Error ? { stacktrace: original.stack?.split('\n') } : {}),
    },
  };
}

/** For errors raised outside graphql-js (WebSocket hooks): format a GraphQLError directly. */
export function formatGraphQLError(error: GraphQLError, options: FormatOptions): GraphQLFormattedError {
  return formatError(error.toJSON(), error, options);
}

/**
 * Apollo plugin: an HTTP answer whose every error is SERVICE_UNAVAILABLE gets status 503,
 * also when a resolver (not the context) met the unreachable database. Sessions and users
 * are served from memory, so a request can get as far as a resolver while the database is away.
 */
export function serviceUnavailableStatusPlugin(): ApolloServerPlugin {
  return {
    requestDidStart: () =>
      Promise.resolve({
        willSendResponse: ({ response }) => {
          if (response.body.kind !== 'single') return Promise.resolve();
          const errors = response.body.singleResult.errors;
          if (errors?.length && errors.every((e) => e.extensions?.code === ErrorCode.SERVICE_UNAVAILABLE)) {
            response.http.status = 503;
            response.http.headers.set('retry-after', '2');
          }
          return Promise.resolve();
        },
      }),
  };
}
