/** `/metrics` is scraped after real traffic (HTTP and WebSocket) and the series moved as they should. */
import { TestClient, type WsTestClient } from '../helpers/client';
import { sample, waitForSample } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';

const SEND = 'mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const WATCH =
  'subscription MessageAdded($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id text } }';

async function scrape(server: TestServer): Promise<string> {
  const res = await fetch(server.metricsUrl!);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

describe('/metrics', () => {
  test('counts connections, subscriptions, messages, deliveries, latency, operations and errors', async () => {
    const before = await scrape(server);
    expect(sample(before, 'anonymo_database_up')).toBe(1);
    expect(sample(before, 'anonymo_messages_sent_total', { conversation: 'lobby' })).toBe(0);
    expect(sample(before, 'anonymo_subscription_deliveries_total', { kind: 'message' })).toBe(0);
    expect(sample(before, 'anonymo_websocket_connections')).toBe(0);
    // Node's own process metrics come along.
    expect(sample(before, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const [, b] = [await alice.me(), await bob.me()];
    const sockets: WsTestClient[] = [alice.ws(), bob.ws()];
    try {
      const subs = sockets.map((ws) => ws.subscribe(WATCH));
      await Promise.all(sockets.map((ws) => ws.connected()));
      await waitForSample(server, 'anonymo_subscriptions_active', {}, (v) => v === 2);
      const during = await scrape(server);
      expect(sample(during, 'anonymo_websocket_connections')).toBe(2);

      await alice.data(SEND, { input: { text: 'one', clientId: 'k-1' } });
      await alice.data(SEND, { input: { text: 'one', clientId: 'k-1' } }); // a retry: stores nothing
      await alice.data(SEND, { input: { text: 'two' } });
      await alice.data(SEND, { input: { text: 'private', to: b.id } });
      await Promise.all(subs.map((s) => s.waitForCount(2)));

      const after = await waitForSample(
        server,
        'anonymo_subscription_deliveries_total',
        { kind: 'message' },
        (v) => v === 4,
      );
      expect(sample(after, 'anonymo_messages_sent_total', { conversation: 'lobby' })).toBe(2);
      expect(sample(after, 'anonymo_messages_sent_total', { conversation: 'direct' })).toBe(1);
      // One latency observation per message event on this instance, each well under 10 s.
      expect(sample(after, 'anonymo_message_delivery_latency_seconds_count')).toBe(2);
      expect(sample(after, 'anonymo_message_delivery_latency_seconds_bucket', { le: '10' })).toBe(2);
      expect(
        sample(after, 'anonymo_graphql_operation_duration_seconds_count', {
          type: 'mutation',
          name: 'SendMessage',
          transport: 'http',
        }),
      ).toBe(4);
      expect(
        sample(after, 'anonymo_graphql_operation_duration_seconds_count', {
          type: 'subscription',
          name: 'MessageAdded',
          transport: 'ws',
        }),
      ).toBe(2);
      expect(
        sample(after, 'anonymo_graphql_operation_duration_seconds_count', {
          type: 'query',
          name: 'anonymous',
          transport: 'http',
        }),
      ).toBe(2);

      // Errors by code, over both transports.
      expect(await alice.errorCode(SEND, { input: { text: '   ' } })).toBe('BAD_USER_INPUT');
      expect(await alice.errorCode('{ me { nope } }')).toBe('GRAPHQL_VALIDATION_FAILED');
      const bad = sockets[0].subscribe(WATCH, { after: 'not a cursor' });
      await bad.ended();
      const errors = await scrape(server);
      expect(sample(errors, 'anonymo_graphql_errors_total', { code: 'BAD_USER_INPUT', transport: 'http' })).toBe(1);
      expect(
        sample(errors, 'anonymo_graphql_errors_total', { code: 'GRAPHQL_VALIDATION_FAILED', transport: 'http' }),
      ).toBe(1);
      expect(sample(errors, 'anonymo_graphql_errors_total', { code: 'BAD_USER_INPUT', transport: 'ws' })).toBe(1);
    } finally {
      await Promise.all(sockets.map((ws) => ws.close()));
    }
    await waitForSample(server, 'anonymo_websocket_connections', {}, (v) => v === 0);
    await waitForSample(server, 'anonymo_subscriptions_active', {}, (v) => v === 0);
  });

  test('each server instance has its own registry', async () => {
    const other = await startServer();
    try {
      const client = new TestClient(other);
      await client.me();
      await client.data(SEND, { input: { text: 'elsewhere' } });
      const mine = await scrape(server);
      const theirs = await scrape(other);
      expect(sample(theirs, 'anonymo_messages_sent_total', { conversation: 'lobby' })).toBe(1);
      expect(sample(mine, 'anonymo_messages_sent_total', { conversation: 'lobby' })).toBe(2);
    } finally {
      await other.close();
    }
  });
});
