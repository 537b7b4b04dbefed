/**
 * Serves the built web client (`web/dist`, made by `npm run build:web`) at `/`, next to the
 * API on the same origin, so the session cookie and the WebSocket need no CORS at all.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type RequestHandler } from 'express';
import type { Logger } from 'pino';

/** The checkout's `web/dist` (this file runs from `src/web/` under jest and `dist/web/` built). */
export const DEFAULT_WEB_DIST = path.resolve(__dirname, '..', '..', 'web', 'dist');

/** Paths the client never owns: a miss there is a 404 of the API, not the app's page. */
const API_PREFIXES = ['/graphql', '/healthz', '/readyz', '/metrics', '/avatars/'];

/**
 * Scripts, styles and connections only from this origin (WebSockets included); avatars are
 * SVG files of this server (or PUBLIC_URL). Inline styles are allowed for React's `style`.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: https: http:",
  "connect-src 'self' ws: wss:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export interface WebClientOptions {
  /** Folder with `index.html` and `assets/`. Default {@link DEFAULT_WEB_DIST}. */
  dir?: string;
  logger?: Logger;
}

/**
 * Static files plus an SPA fallback to `index.html` for GET navigations. Returns null when
 * the client has not been built (the API works without it; the log says how to build it).
 */
export function webClient(options: WebClientOptions = {}): RequestHandler | null {
  const dir = options.dir ?? DEFAULT_WEB_DIST;
  const index = path.join(dir, 'index.html');
  if (!existsSync(index)) {
    options.logger?.warn({ dir }, 'web client not built: run `npm run build:web` (npm start does) to serve it at /');
    return null;
  }
  const router = express.Router();
  router.use(
    express.static(dir, {
      index: false,
      setHeaders: (res, file) => {
        // Vite puts a content hash in every asset name: cache those forever.
        if (file.startsWith(path.join(dir, 'assets') + path.sep))
          res.set('Cache-Control', 'public, max-age=31536000, immutable');
      },
    }),
  );
  router.get(/.*/, (req, res, next) => {
    if (API_PREFIXES.some((p) => req.path === p || req.path.startsWith(p.endsWith('/') ? p : `${p}/`))) return next();
    // Only navigations get the app; a missing script or image stays a 404.
    if (path.extname(req.path) !== '' || !req.accepts('html')) return next();
    res.set('Cache-Control', 'no-cache').set('Content-Security-Policy', CSP).sendFile(index);
  });
  return router;
}
