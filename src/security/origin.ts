/**
 * Which browser origins may use the API with the session cookie. Browsers attach cookies to
 * a cross-site WebSocket upgrade and do not apply CORS to it, so without this check any page
 * could open a subscription as its visitor (cross-site WebSocket hijacking).
 */
import type { IncomingMessage } from 'node:http';
import { normalizeOrigin, type SecurityConfig } from './security.config';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export type OriginPolicyConfig = Pick<SecurityConfig, 'allowedOrigins' | 'publicOrigin' | 'allowLoopbackOrigins'>;

export class OriginPolicy {
  private readonly allowed: Set<string>;

  constructor(private readonly config: OriginPolicyConfig) {
    this.allowed = new Set(config.allowedOrigins);
    if (config.publicOrigin) this.allowed.add(config.publicOrigin);
  }

  /**
   * Whether a request with this `Origin` header may proceed. `host` is the request's Host
   * header: a page served by this server itself is same-origin (the browser sets Host, so a
   * foreign page cannot choose it). No Origin at all is a non-browser client, which carries
   * only the cookies it was given.
   */
  allows(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    const normalized = normalizeOrigin(origin);
    // "null" (sandboxed frames, file: pages) and anything malformed are foreign.
    if (!normalized) return false;
    if (this.allowed.has(normalized)) return true;
    const url = new URL(normalized);
    if (host && url.host === host.toLowerCase()) return true;
    return this.config.allowLoopbackOrigins && LOOPBACK_HOSTS.has(url.hostname);
  }

  /** {@link allows} for an incoming request (a repeated Origin header is refused). */
  allowsRequest(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (Array.isArray(origin)) return false;
    return this.allows(origin, req.headers.host);
  }
}
