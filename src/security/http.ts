/**
 * The HTTP side of the origin policy: CORS with credentials for allowed origins, and a
 * refusal (403, before the session is read) for any other browser origin.
 */
import cors from 'cors';
import type { RequestHandler } from 'express';
import { ErrorCode } from '../errors';
import type { OriginPolicy } from './origin';
import { rateLimitedError, type RateLimits } from './rate-limit';

/** Refuses requests from foreign browser origins, then answers CORS for the allowed ones. */
export function originMiddleware(policy: OriginPolicy): RequestHandler[] {
  const guard: RequestHandler = (req, res, next) => {
    if (policy.allowsRequest(req)) return next();
    res.status(403).json({
      errors: [{ message: 'Origin not allowed', extensions: { code: ErrorCode.FORBIDDEN } }],
    });
  };
  // Only allowed origins get here, so reflecting the request's Origin is safe.
  const corsHandler = cors({ origin: true, credentials: true, maxAge: 600 });
  // A request without Origin is not a cross-origin browser request: CORS headers would mean
  // nothing to it (and GraphQL answers are `no-store`, so no cache varies on them).
  const corsForOrigins: RequestHandler = (req, res, next) =>
    req.headers.origin === undefined ? next() : corsHandler(req, res, next);
  return [guard, corsForOrigins];
}

/**
 * RATE_LIMIT_HTTP_IP: every GraphQL request over HTTP, reads included, counts against its
 * address; the excess gets 429 with Retry-After before the session or the body is read.
 */
export function httpRateLimit(limits: RateLimits): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'OPTIONS') return next();
    limits.retryAfter('httpRequests', { ip: req.ip }).then((wait) => {
      if (wait <= 0) return next();
      const error = rateLimitedError('httpRequests', wait);
      res.status(429).set('Retry-After', String(Math.ceil(wait / 1000)));
      res.json({ errors: [{ message: error.message, extensions: error.extensions }] });
    }, next);
  };
}
