import WebSocket from 'ws';
import { TestClient } from '../helpers/client';
import { subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ env: { MAX_CONNECTIONS: '3', MAX_SUBSCRIPTIONS_PER_CONNECTION: '2' } });
});
afterAll(async () => {
  await server.close();
});

/** Opens a raw WebSocket; resolves with the socket or the HTTP status of a refused upgrade. */
function open(cookie?: string): Promise<{ socket?: WebSocket; status?: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws', cookie ? { headers: { cookie } } : {});
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_req, res) =>
      resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] }),
    );
    socket.once('error', reject);
  });
}

describe('capacity', () => {
  test('the connection after MAX_CONNECTIONS is refused with 503, and accepted again after one closes', async () => {
    const browser = new TestClient(server);
    await browser.me();
    const opened = await Promise.all([open(browser.cookie), open(browser.cookie), open(browser.cookie)]);
    expect(opened.every((o) => o.socket)).toBe(true);
    const refused = await open(browser.cookie);
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(server.stats().refusedForCapacity).toBeGreaterThanOrEqual(1);

    const closed = new Promise((r) => opened[0].socket!.once('close', r));
    opened[0].socket!.close();
    await closed;
    await waitFor(() => server.stats().connections === 2, { what: 'the server to see the close' });
    const again = await open(browser.cookie);
    expect(again.socket).toBeDefined();
    for (const o of [...opened.slice(1), again]) o.socket!.close();
    await waitFor(() => server.stats().connections === 0).catch(() => undefined);
    expect(server.stats().connections).toBe(0);
  });

  test('operations beyond MAX_SUBSCRIPTIONS_PER_CONNECTION on one connection are refused with RATE_LIMITED', async () => {
    const browser = new TestClient(server);
    const ws = browser.ws();
    try {
      const s1 = ws.subscribe('subscription { messageAdded { id } }');
      const s2 = ws.subscribe('subscription { presenceChanged { online } }');
      const s3 = ws.subscribe('subscription { typing { typing } }');
      await s3.ended();
      expect(JSON.stringify(s3.errors)).toContain('RATE_LIMITED');
      expect(s1.errors).toBeUndefined();
      expect(s2.errors).toBeUndefined();
      // The connection itself stays usable once a slot is free.
      await subscriptionsAttached(server, 2);
      s2.unsubscribe();
      await subscriptionsAttached(server, 1);
      const r = await ws.query('{ me { id } }');
      expect(r.data?.me.id).toMatch(/^[0-9a-f]{24}$/);
    } finally {
      await ws.close();
    }
  });
});
