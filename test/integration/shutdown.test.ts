import WebSocket from 'ws';
import { TestClient } from '../helpers/client';
import { dbUri, freshDbName, openDb } from '../helpers/db';
import { startServerProcess } from '../helpers/process';
import { TEST_SECRET } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const SEND =
  'mutation($text: String!, $clientId: String) { sendMessage(input: { text: $text, clientId: $clientId }) { id clientId } }';

function env(db: string) {
  return { MONGODB_URI: dbUri(db), SESSION_SECRET: TEST_SECRET, SHUTDOWN_TIMEOUT_MS: '5000' };
}

jest.setTimeout(60000);

test('SIGTERM: WebSockets are closed with 1001 and the process exits 0 within 10 s', async () => {
  const db = freshDbName('shutdown');
  const proc = await startServerProcess(env(db));
  const browser = new TestClient(proc);
  await browser.me();
  const socket = new WebSocket(proc.wsUrl, 'graphql-transport-ws', { headers: { cookie: browser.cookie! } });
  await new Promise((r) => socket.once('open', r));
  const closed = new Promise<number>((r) => socket.once('close', (code) => r(code)));

  const t0 = Date.now();
  proc.child.kill('SIGTERM');
  expect(await closed).toBe(1001);
  const { code } = await proc.exited;
  expect(code).toBe(0);
  expect(Date.now() - t0).toBeLessThan(10000);
  expect(proc.logs.some((l) => l.includes('"stopped"'))).toBe(true);
});

test('a second signal while draining does not abort the drain (still exits 0)', async () => {
  const proc = await startServerProcess(env(freshDbName('shutdown2')));
  proc.child.kill('SIGINT');
  proc.child.kill('SIGINT');
  proc.child.kill('SIGTERM');
  expect((await proc.exited).code).toBe(0);
});

test('shutdown under load: every acknowledged sendMessage is stored, and nothing else', async () => {
  const db = freshDbName('shutdown-load');
  const proc = await startServerProcess(env(db));
  const clients = Array.from({ length: 10 }, () => new TestClient(proc));
  await Promise.all(clients.map((c) => c.me()));
  const acknowledged: string[] = [];
  const failed: string[] = [];
  let stop = false;
  const load = clients.map(async (c, k) => {
    for (let i = 0; !stop; i++) {
      const clientId = `c${k}-${i}`;
      try {
        const r = await c.gql<{ sendMessage: { id: string } }>(SEND, { text: `load ${clientId}`, clientId });
        if (r.data?.sendMessage) acknowledged.push(clientId);
        else failed.push(clientId);
      } catch {
        failed.push(clientId); // connection refused or reset: not acknowledged
        if (stop) break;
      }
    }
  });
  // SIGTERM lands while sends are in full flow: once a few dozen have been acknowledged.
  await waitFor(() => acknowledged.length >= 30, { timeout: 20000, what: '30 acknowledged sends' });
  proc.child.kill('SIGTERM');
  const { code } = await proc.exited;
  stop = true;
  await Promise.all(load);
  expect(code).toBe(0);
  expect(acknowledged.length).toBeGreaterThan(10);

  const { db: direct, close } = await openDb(dbUri(db));
  try {
    const stored = (
      await direct
        .collection('messages')
        .find({}, { projection: { clientId: 1 } })
        .toArray()
    ).map((m) => m.clientId as string);
    // Nothing acknowledged is lost, nothing is stored twice.
    for (const id of acknowledged) expect(stored).toContain(id);
    expect(new Set(stored).size).toBe(stored.length);
    // A request cut off during shutdown may or may not have been stored, but only once.
    for (const id of stored) expect(acknowledged.includes(id) || failed.includes(id)).toBe(true);
  } finally {
    await close();
  }
});
