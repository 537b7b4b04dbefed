/**
 * The built web client is served at `/` next to the API without shadowing it, and
 * `GET /graphql` from a browser gets Apollo's landing page (Sandbox) outside production.
 * (Sandbox itself loads from Apollo's CDN, which these machines cannot reach, so only the
 * page is checked here; docs/OPERATIONS.md "Apollo Sandbox" describes the manual steps.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { webClient } from '../../src/web/web-client';
import { ensureWebClientBuilt } from '../helpers/browser';
import { TestClient } from '../helpers/client';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server';

let server: TestServer;
let base: string;
const html = { accept: 'text/html,application/xhtml+xml' };

beforeAll(async () => {
  ensureWebClientBuilt();
  server = await startServer();
  base = server.url.replace(/\/graphql$/, '');
}, 60_000);
afterAll(async () => {
  await server.close();
});

describe('the web client at /', () => {
  test('/ is the app, with a content security policy, and its hashed assets are cached for good', async () => {
    const res = await fetch(`${base}/`, { headers: html });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const page = await res.text();
    expect(page).toContain('<div id="root"></div>');
    const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(page)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(base + script);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toContain('javascript');
    expect(asset.headers.get('cache-control')).toContain('immutable');
  });

  test('other navigations get the app too (SPA fallback), missing files stay 404', async () => {
    const spa = await fetch(`${base}/some/where`, { headers: html });
    expect(spa.status).toBe(200);
    expect(await spa.text()).toContain('<div id="root"></div>');
    expect((await fetch(`${base}/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${base}/some/where`, { headers: { accept: 'application/json' } })).status).toBe(404);
  });

  test('the API keeps its paths: /graphql, /healthz, /readyz, /avatars; /metrics is served on the metrics port only', async () => {
    const client = new TestClient(server);
    expect((await client.me()).id).toMatch(/^[0-9a-f]{24}$/);
    expect(await (await fetch(`${base}/healthz`, { headers: html })).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${base}/readyz`, { headers: html })).json()).toEqual({ status: 'ready' });
    const publicMetrics = await fetch(`${base}/metrics`, { headers: html });
    expect(publicMetrics.status).toBe(404);
    expect(await publicMetrics.text()).not.toContain('<div id="root">');
    expect(await (await fetch(server.metricsUrl!)).text()).toContain('anonymo_websocket_connections');
    const avatar = await fetch(`${base}/avatars/abc.svg`, { headers: html });
    expect(avatar.headers.get('content-type')).toContain('image/svg+xml');
    // Misses under the API's prefixes are the API's 404s, not the app.
    for (const miss of ['/avatars/', '/avatars/nope', '/metrics/x', '/healthz/x']) {
      const res = await fetch(base + miss, { headers: html });
      expect([miss, res.status]).toEqual([miss, 404]);
      expect(await res.text()).not.toContain('<div id="root">');
    }
  });

  test('without a build the server still serves the API and says how to build the client', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'anonymo-no-web-'));
    const warnings: unknown[] = [];
    const logger = { warn: (...args: unknown[]) => warnings.push(args) } as never;
    try {
      expect(webClient({ dir: empty, logger })).toBeNull();
      expect(JSON.stringify(warnings)).toContain('npm run build:web');
      writeFileSync(path.join(empty, 'index.html'), '<!doctype html>');
      expect(webClient({ dir: empty, logger })).not.toBeNull();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('Apollo Sandbox landing page', () => {
  test('GET /graphql from a browser serves the embedded Sandbox, sending cookies, outside production', async () => {
    const res = await fetch(server.url, { headers: html });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const page = await res.text();
    expect(page).toContain('embeddable-sandbox.cdn.apollographql.com');
    expect(page).toContain('new window.EmbeddedSandbox(');
    expect(page).toContain('"includeCookies":true');
    // Sandbox uses the page's own URL as the endpoint: the same origin as the API.
    expect(page).toContain('var initialEndpoint = window.location.href;');
  });

  test('JSON clients still get GraphQL at the same URL', async () => {
    const res = await fetch(`${server.url}?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { accept: 'application/json', 'apollo-require-preflight': 'true' },
    });
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
  });

  test('production serves no Sandbox', async () => {
    const prod = await startServer({ env: { NODE_ENV: 'production', SESSION_SECRET: TEST_SECRET } });
    try {
      const page = await (await fetch(prod.url, { headers: html })).text();
      expect(page).not.toContain('new window.EmbeddedSandbox(');
      expect(page).not.toContain('includeCookies');
    } finally {
      await prod.close();
    }
  });
});
