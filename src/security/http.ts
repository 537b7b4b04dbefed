/**
 * The HTTP side of the origin policy: CORS with credentials for allowed origins, and a
 * refusal (403, before the session is read) for any other browser origin.
 */
import cors from 'cors';
import type { RequestHandler } from 'express';
import { ErrorCode } from '../errors';
import type { OriginPolicy } from './origin';

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
  return [guard, corsHandler];
}
