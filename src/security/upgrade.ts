/**
 * Checks on a WebSocket upgrade that run before the session is read: a foreign browser
 * origin is refused (403) so a page elsewhere cannot ride its visitor's cookie, and an
 * address opening connections too fast is told to wait (429 with Retry-After).
 */
import type { IncomingMessage } from 'node:http';
import type { OriginPolicy } from './origin';
import type { RateLimits } from './rate-limit';

export interface UpgradeRefusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** Null when the upgrade may proceed to the session and identity. */
export async function checkUpgrade(
  req: IncomingMessage,
  ip: string,
  deps: { origins: OriginPolicy; limits: RateLimits },
): Promise<UpgradeRefusal | null> {
  if (!deps.origins.allowsRequest(req)) return { status: 403, message: 'Forbidden' };
  const wait = await deps.limits.retryAfter('wsConnections', { ip });
  if (wait > 0) return tooManyRequests(wait);
  return null;
}

export function tooManyRequests(retryAfterMs: number): UpgradeRefusal {
  return {
    status: 429,
    message: 'Too Many Requests',
    headers: { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) },
  };
}
