/**
 * Anonymous identity on top of express-session: the first request of a browser without a
 * session creates a user and stores its id in the session. HTTP and the WebSocket upgrade
 * run through the same session middleware, so a subscription runs as the cookie's user.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import signature from 'cookie-signature';
import session, { type Session, type SessionData } from 'express-session';
import type { RequestHandler } from 'express';
import type { Config } from '../config';
import { newUserId, type UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import type { MongoSessionStore } from './session.store';

export type SessionRequest = IncomingMessage & {
  session: Session & Partial<SessionData>;
  sessionID: string;
};

export interface Identity {
  user: UserRecord;
  sessionId: string;
  /** True when this request created the user (and the session). */
  created: boolean;
}

export function createSessionMiddleware(config: Config, store: MongoSessionStore, secret: string): RequestHandler {
  return session({
    name: config.session.cookieName,
    secret,
    store,
    resave: false,
    saveUninitialized: false,
    // Each response renews the cookie's expiry: an identity in use never expires.
    rolling: true,
    proxy: config.trustProxy ? true : undefined,
    cookie: {
      httpOnly: true,
      sameSite: config.session.sameSite,
      secure: config.session.secure,
      maxAge: config.session.ttlMs,
      path: '/',
    },
  });
}

export interface IdentityHooks {
  /**
   * Runs before a new identity is created, with the id it will have; throwing (e.g.
   * RATE_LIMITED, POW_REQUIRED) creates nothing.
   */
  beforeCreate?: (userId: string) => Promise<void>;
}

/** The session's user, creating one (and marking the session for saving) when there is none. */
export async function resolveIdentity(
  req: SessionRequest,
  users: UserService,
  hooks: IdentityHooks = {},
): Promise<Identity> {
  const existing = req.session.userId ? await users.get(req.session.userId) : null;
  if (existing) return { user: existing, sessionId: req.sessionID, created: false };
  const id = newUserId();
  await hooks.beforeCreate?.(id.toHexString());
  if (req.session.userId) {
    // The session's identity is gone (reset): the new identity gets a new session id, so
    // whoever knew the old id does not share it.
    await new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
  }
  const user = await users.create(id);
  req.session.userId = user.id;
  return { user, sessionId: req.sessionID, created: true };
}

function runMiddleware(mw: RequestHandler, req: IncomingMessage): Promise<void> {
  // express-session only needs a response to hook its automatic save into, which an
  // upgrade does not have: the session is saved explicitly below instead.
  return new Promise((resolve, reject) =>
    mw(req as never, {} as never, (err?: unknown) =>
      err ? reject(err instanceof Error ? err : new Error('session middleware failed', { cause: err })) : resolve(),
    ),
  );
}

function isSecure(req: IncomingMessage, trustProxy: Config['trustProxy']): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  if (!trustProxy) return false;
  const proto = req.headers['x-forwarded-proto'];
  return typeof proto === 'string' && proto.split(',')[0].trim() === 'https';
}

/**
 * Runs the session middleware on a WebSocket upgrade request and resolves its identity.
 * When a new identity was created, returns the Set-Cookie value for the 101 response, so
 * a browser that opened a WebSocket first keeps the identity for later HTTP requests.
 */
export async function upgradeIdentity(
  req: IncomingMessage,
  sessionMiddleware: RequestHandler,
  users: UserService,
  config: Config,
  secret: string,
  hooks: IdentityHooks = {},
): Promise<{ identity: Identity; setCookie?: string }> {
  await runMiddleware(sessionMiddleware, req);
  const sreq = req as SessionRequest;
  const identity = await resolveIdentity(sreq, users, hooks);
  if (!identity.created) return { identity };
  await new Promise<void>((resolve, reject) => sreq.session.save((err) => (err ? reject(err) : resolve())));
  if (sreq.session.cookie.secure && !isSecure(req, config.trustProxy)) return { identity };
  const value = `s:${signature.sign(sreq.sessionID, secret)}`;
  // express-session's Cookie renders itself with the configured attributes (not in its typings).
  const cookie = sreq.session.cookie as unknown as { serialize(name: string, value: string): string };
  return { identity, setCookie: cookie.serialize(config.session.cookieName, value) };
}
