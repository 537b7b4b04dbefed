/**
 * The one Context type for HTTP operations, WebSocket operations and resolvers. Resolvers
 * read the viewer and loaders from here and never touch `req` or sockets.
 */
import DataLoader from 'dataloader';
import type { DocumentNode } from 'graphql';
import type { WebSocket } from 'ws';
import type { Services } from './services';
import type { UserService } from './users/user.service';
import type { UserRecord } from './users/user.type';

export interface Loaders {
  users: DataLoader<string, UserRecord | null>;
}

/** The graphql-ws operation a context belongs to (WebSocket transport only). */
export interface WsOperation {
  socket: WebSocket;
  subscriptionId: string;
  /** The operation as the client sent it (the fan-out groups subscribers by it). */
  query: string;
  document: DocumentNode;
  operationName?: string | null;
  variables: Record<string, unknown>;
}

/** Control over the browser's session (HTTP only: a new cookie can only ride on an HTTP response). */
export interface SessionControl {
  /** Replaces the session (new id, old one destroyed) with one bound to `userId`. */
  regenerate(userId: string): Promise<void>;
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
  /** The server's services, for subscription `subscribe` functions (declared statically). */
  readonly services: Services;
  readonly ws?: WsOperation;
}

export function createLoaders(users: UserService): Loaders {
  return {
    users: new DataLoader((ids: readonly string[]) => users.getMany(ids), { maxBatchSize: 200 }),
  };
}

/**
 * The context of a subscription event executed once for many subscribers (see
 * realtime/fanout.ts). It has no viewer: a field that reads `user` here is a bug in the
 * viewer-dependence analysis, and fails loudly instead of leaking one viewer's data to all.
 */
export function sharedContext(services: Services, loaders: Loaders): Context {
  return {
    services,
    get user(): UserRecord {
      throw new Error('A viewer-dependent field was executed in the shared subscription context');
    },
    sessionId: '',
    transport: 'ws',
    requestId: 'fanout',
    ip: '',
    loaders,
  };
}
