/**
 * The one Context type for HTTP operations, WebSocket operations and resolvers. Resolvers
 * read the viewer and loaders from here and never touch `req` or sockets. It is built in one
 * place for both transports (transport/context.ts) and carries no services: resolvers get
 * the services they use through their constructors (see app.ts).
 */
import type DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { ErrorCode } from './errors';
import type { UserRecord } from './users/user.type';

export interface Loaders {
  users: DataLoader<string, UserRecord | null>;
}

/** Control over the browser's session (HTTP only: a new cookie can only ride on an HTTP response). */
export interface SessionControl {
  /** Replaces the session (new id, old one destroyed) with one bound to `userId`. */
  regenerate(userId: string): Promise<void>;
}

/**
 * Starts live subscriptions of registered channel kinds (see realtime/engine.ts). An object
 * with a method rather than a function: the WebSocket operation that implements it lives as
 * long as its subscription anyway, and a closure would be one more object per subscriber.
 */
export interface LiveSubscribe {
  start(kind: string, args: Record<string, unknown>): Promise<AsyncIterableIterator<unknown>>;
}

export interface Context {
  /** The viewer: the session's anonymous identity. */
  readonly user: UserRecord;
  readonly sessionId: string;
  readonly transport: 'http' | 'ws';
  /** Id of the HTTP request or WebSocket connection, for logs. */
  readonly requestId: string;
  readonly ip: string;
  readonly loaders: Loaders;
  /** Present for HTTP operations. */
  readonly sessionControl?: SessionControl;
  /** Present for WebSocket operations: subscriptions are served there only. */
  readonly live?: LiveSubscribe;
  /**
   * The moderator token the request presented (HTTP `Authorization: Bearer`, graphql-ws
   * `connection_init` `{ moderatorToken }`), unchecked: moderation/moderator.ts decides.
   */
  readonly moderatorToken?: string;
  /** True when this request created the viewer's identity (a cookieless first request). */
  readonly identityCreated?: boolean;
  /** The proof-of-work solution the request carries (HTTP `X-Anonymo-Pow`), unchecked: security/pow.ts decides. */
  readonly powSolution?: string;
}

/**
 * For a subscription field's `subscribe` function (type-graphql declares it statically, so it
 * cannot use the resolver's constructor dependencies): starts the channel kind `kind`.
 */
export function live(context: unknown, kind: string, args: unknown): Promise<AsyncIterableIterator<unknown>> {
  const ctx = context as Context;
  if (!ctx.live) {
    throw new GraphQLError('Subscriptions are served over WebSocket only (graphql-ws at the same path)', {
      extensions: { code: ErrorCode.BAD_REQUEST },
    });
  }
  return ctx.live.start(kind, (args ?? {}) as Record<string, unknown>);
}
