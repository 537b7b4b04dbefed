import WebSocket from 'ws';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

// Long enough that a loaded machine (the suite runs the fuzzer beside this file) does not
// mistake a slow pong for a dead peer before the subscription has even attached.
const KEEPALIVE_MS = 1000;
let server: TestServer;
beforeAll(async () => {
  server = await startServer({ env: { WS_KEEPALIVE_MS: String(KEEPALIVE_MS) } });
});
afterAll(async () => {
  await server.close();
});

/** A graphql-ws connection over a raw socket, with one subscription started. */
async function rawSubscriber(cookie: string): Promise<WebSocket> {
  const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws', { headers: { cookie } });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise((resolve) => socket.once('message', resolve)); // connection_ack
  socket.send(
    JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { messageAdded { id } }' } }),
  );
  return socket;
}

const until = (check: () => boolean, timeout = 15000) => waitFor(check, { timeout });

test('the server pings idle connections so proxies that cut idle sockets keep them', async () => {
  const browser = new TestClient(server);
  await browser.me();
  const socket = await rawSubscriber(browser.cookie!);
  let pings = 0;
  socket.on('ping', () => pings++);
  await until(() => pings >= 3, KEEPALIVE_MS * 10);
  expect(socket.readyState).toBe(WebSocket.OPEN);
  socket.close();
  // The next test counts subscriptions relative to a baseline: this one must be gone first.
  await until(() => server.stats().connections === 0 && server.services.realtime.stats().subscribers === 0);
});

test('a dead peer (no pong) is dropped and its subscriptions, listeners and presence are cleaned up', async () => {
  const browser = new TestClient(server);
  await browser.me();
  const before = server.services.realtime.stats();
  const connectionsBefore = server.stats().connections;
  const socket = await rawSubscriber(browser.cookie!);
  await until(() => server.services.realtime.stats().subscribers === before.subscribers + 1);
  expect(server.stats().connections).toBe(connectionsBefore + 1);

  // The peer vanishes without a FIN: stop reading, so pings are never answered.
  (socket as unknown as { _socket: import('node:net').Socket })._socket.pause();
  await until(() => server.stats().connections === connectionsBefore, KEEPALIVE_MS * 10);
  await until(() => server.services.realtime.stats().subscribers === before.subscribers);
  expect(server.services.realtime.stats()).toEqual(before);
  socket.terminate();
});
