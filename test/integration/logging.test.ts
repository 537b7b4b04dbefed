/**
 * Request and connection logs: JSON lines with a request or connection id and the user id,
 * and never what people wrote, the variables, or cookies.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const SECRET_TEXT = 'my very private words 7c1f';
const SEND = 'mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id } }';

const lines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    done();
  },
});
const logs = () => lines.map((l) => JSON.parse(l) as Record<string, any>);

async function waitForLog(pred: (l: Record<string, any>) => boolean, what: string): Promise<Record<string, any>> {
  let found: Record<string, any> | undefined;
  await waitFor(() => (found = logs().find(pred)) !== undefined).catch(() => {
    throw new Error(`no log line ${what}:\n${lines.join('\n')}`);
  });
  return found!;
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ logger: createLogger({ logLevel: 'info' }, sink) });
});
afterAll(async () => {
  await server.close();
});

describe('logs', () => {
  test('HTTP requests: request id (also the X-Request-Id header), user id and operation name, no text or cookies', async () => {
    const alice = new TestClient(server);
    const me = await alice.me();
    const res = await alice.post(
      JSON.stringify({ query: SEND, operationName: 'Send', variables: { input: { text: SECRET_TEXT } } }),
    );
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);

    const line = await waitForLog((l) => l.req?.id === requestId, `for request ${requestId}`);
    expect(line).toMatchObject({
      level: 30,
      userId: me.id,
      operation: 'Send',
      req: { method: 'POST', path: '/graphql' },
      res: { statusCode: 200 },
    });
    expect(typeof line.responseTime).toBe('number');
    expect(Object.keys(line.req).sort()).toEqual(['id', 'method', 'path']);

    const cookieValue = alice.cookie!.split('=')[1];
    const all = lines.join('\n');
    expect(all).not.toContain(SECRET_TEXT);
    expect(all).not.toContain(cookieValue);
    expect(all.toLowerCase()).not.toContain('cookie');
    expect(all).not.toContain('variables');
  });

  test("a proxy's X-Request-Id is kept when it looks like an id, replaced otherwise", async () => {
    const client = new TestClient(server);
    const kept = await client.post(JSON.stringify({ query: '{ me { id } }' }), {
      'x-request-id': 'edge-req-0123456789',
    });
    expect(kept.headers.get('x-request-id')).toBe('edge-req-0123456789');
    await waitForLog((l) => l.req?.id === 'edge-req-0123456789', 'with the proxy id');
    const replaced = await client.post(JSON.stringify({ query: '{ me { id } }' }), {
      'x-request-id': 'not an id, has spaces',
    });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('GET /graphql logs the path without the query string (it carries the operation)', async () => {
    const client = new TestClient(server);
    await client.me();
    const url = `${server.url}?query=${encodeURIComponent(`# ${SECRET_TEXT}\n{ me { username } }`)}`;
    const res = await fetch(url, { headers: { cookie: client.cookie!, 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id');
    const line = await waitForLog((l) => l.req?.id === id, 'for the GET');
    expect(line.req).toEqual({ id, method: 'GET', path: '/graphql' });
    expect(lines.join('\n')).not.toContain(SECRET_TEXT);
  });

  test('WebSocket connections: connection id and user id when opened and closed', async () => {
    const bob = new TestClient(server);
    const me = await bob.me();
    const ws = bob.ws();
    await ws.connected();
    const opened = await waitForLog((l) => l.msg === 'WebSocket connected' && l.userId === me.id, 'for the connection');
    expect(opened.connectionId).toMatch(/^[0-9a-f-]{36}$/);
    await ws.close();
    const closed = await waitForLog(
      (l) => l.msg === 'WebSocket closed' && l.connectionId === opened.connectionId,
      'for the close',
    );
    expect(closed).toMatchObject({ userId: me.id, code: 1000 });
    expect(typeof closed.durationMs).toBe('number');
  });

  test('health probes and scrapes are not logged when they succeed', async () => {
    const base = server.url.replace(/\/graphql$/, '');
    for (const p of ['/healthz', '/readyz']) expect((await fetch(base + p)).status).toBe(200);
    expect((await fetch(server.metricsUrl!)).status).toBe(200);
    // A request after them, to know the probes' lines would have been written by now.
    const marker = await new TestClient(server).post(JSON.stringify({ query: '{ me { id } }' }));
    await waitForLog((l) => l.req?.id === marker.headers.get('x-request-id'), 'for the marker');
    expect(logs().filter((l) => ['/healthz', '/readyz', '/metrics'].includes(l.req?.path))).toEqual([]);
  });
});
