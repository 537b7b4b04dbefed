/** The shared keepalive: one timer pings every socket; a peer that stops answering is dropped. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { startKeepAlive } from '../../src/realtime/keepalive';
import { waitFor } from '../helpers/wait';

let wss: WebSocketServer;
let stop: () => void;
let url: string;
beforeAll(async () => {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  stop = startKeepAlive(wss, 100);
});
afterAll(async () => {
  stop();
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => wss.close(r));
});

test('a peer that answers pings stays connected; one that does not is terminated', async () => {
  const healthy = new WebSocket(url);
  const silent = new WebSocket(url, { autoPong: false });
  await Promise.all([once(healthy, 'open'), once(silent, 'open')]);
  let pings = 0;
  healthy.on('ping', () => pings++);
  const silentClosed = once(silent, 'close');
  const [code] = (await silentClosed) as [number];
  // terminate(): no close frame, so the client sees an abnormal closure.
  expect(code).toBe(1006);
  // Several rounds later the healthy peer is still there.
  await waitFor(() => pings >= 3).catch(() => undefined); // the assertion says how many came
  expect(pings).toBeGreaterThanOrEqual(3);
  expect(healthy.readyState).toBe(WebSocket.OPEN);
  healthy.close();
});

test('every socket gets its turn: many answering peers are all pinged and none is dropped', async () => {
  const clients = Array.from({ length: 40 }, () => new WebSocket(url));
  await Promise.all(clients.map((c) => once(c, 'open')));
  const pings = clients.map(() => 0);
  clients.forEach((c, i) => c.on('ping', () => pings[i]++));
  await waitFor(() => Math.min(...pings) >= 2).catch(() => undefined);
  expect(Math.min(...pings)).toBeGreaterThanOrEqual(2);
  expect(clients.every((c) => c.readyState === WebSocket.OPEN)).toBe(true);
  for (const c of clients) c.close();
});

test('once stopped, nothing is pinged or dropped', async () => {
  const other = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(other, 'listening');
  startKeepAlive(other, 100)();
  const client = new WebSocket(`ws://127.0.0.1:${(other.address() as AddressInfo).port}`, { autoPong: false });
  await once(client, 'open');
  let pings = 0;
  client.on('ping', () => pings++);
  // The sync point is a control peer of the running keepalive (same 100 ms interval): once it
  // has been pinged 4 times, over 3 intervals have passed, in which a live timer would have
  // pinged this client too.
  const control = new WebSocket(url);
  await once(control, 'open');
  let controlPings = 0;
  control.on('ping', () => controlPings++);
  await waitFor(() => controlPings >= 4, { what: 'the control peer to be pinged 4 times' });
  control.close();
  expect(pings).toBe(0);
  expect(client.readyState).toBe(WebSocket.OPEN);
  client.terminate();
  for (const c of other.clients) c.terminate();
  await new Promise((r) => other.close(r));
});
