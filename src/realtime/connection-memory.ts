/**
 * Per-connection memory. graphql-ws keeps the HTTP upgrade request of every WebSocket for
 * the connection's lifetime (as `ctx.extra.request`); with its headers, parsed URL and
 * express-session objects that is a few KiB per idle subscriber. Operations read only
 * `request.anonymo` (set by the upgrade handler), so once the connection is open the rest
 * is released.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const RELEASED = ['session', 'sessionStore', 'sessionID', '_parsedUrl', '_parsedOriginalUrl', 'rawTrailers'] as const;

/** Drops what an open WebSocket's upgrade request no longer needs; keeps `anonymo`, `url`, `method`. */
export function releaseUpgradeRequest(req: IncomingMessage): void {
  const r = req as unknown as Record<string, unknown>;
  for (const key of RELEASED) if (key in r) r[key] = undefined;
  r.rawHeaders = [];
  r.headers = {};
}

/**
 * `socket.on('error', destroyOnError)`: a shared listener instead of a closure that would
 * keep the upgrade handler's scope (request and head buffer) alive as long as the socket.
 */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** A flat copy of a string built by concatenation (a rope keeps every part alive). */
export function flat(s: string): string {
  return Buffer.from(s).toString();
}
