#!/usr/bin/env node
/**
 * Builds the web client (web/ → web/dist) when it is missing or older than its sources.
 * `npm start` runs it (prestart) and the end-to-end tests run it before starting a server,
 * so neither serves a stale client. `--force` builds regardless.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const web = path.join(root, 'web');
const built = path.join(web, 'dist', 'index.html');
const inputs = [
  path.join(web, 'src'),
  path.join(web, 'index.html'),
  path.join(web, 'vite.config.mts'),
  path.join(root, 'package-lock.json'),
];

function newest(p) {
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = 0;
  for (const e of readdirSync(p)) t = Math.max(t, newest(path.join(p, e)));
  return t;
}

const stale = !existsSync(built) || inputs.some((p) => existsSync(p) && newest(p) > statSync(built).mtimeMs);
if (!stale && !process.argv.includes('--force')) {
  console.log('web client is up to date (web/dist)');
  process.exit(0);
}

let vite;
try {
  vite = await import('vite');
} catch {
  // Installed without devDependencies (npm ci --omit=dev): serve what was built, if anything.
  console.warn(
    existsSync(built)
      ? 'vite is not installed: serving the existing web/dist'
      : 'vite is not installed: the web client is not built (the API still runs)',
  );
  process.exit(0);
}
await vite.build({ configFile: path.join(web, 'vite.config.mts'), logLevel: 'warn' });
console.log('built the web client into web/dist');
