import WebSocket from 'ws';
import { TestClient } from '../helpers/client';
import { openDb, privateFerretDB } from '../helpers/db';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';
import { startFerretDB, type EmbeddedDatabase } from '../../src/db/embedded';

const SEND =
  'mutation($text: String!, $clientId: String) { sendMessage(input: { text: $text, clientId: $clientId }) { id } }';

let db: Awaited<ReturnType<typeof privateFerretDB>>;
let server: TestServer;
let restarted: EmbeddedDatabase | undefined;

beforeAll(async () => {
  db = await privateFerretDB();
  server = await startServer({ mongodbUri: db.uri, env: { DB_TIMEOUT_MS: '1500' } });
});
afterAll(async () => {
  await server.close().catch(() => undefined);
  await restarted?.stop();
  await db.cleanup();
});

async function status(path: string): Promise<number> {
  return (await fetch(new URL(path, server.url))).status;
}

test('health endpoints: /healthz is the process, /readyz the database', async () => {
  expect(await status('/healthz')).toBe(200);
  expect(await status('/readyz')).toBe(200);
});

test('while the database is down operations fail fast with SERVICE_UNAVAILABLE, /readyz says not ready, and everything recovers by itself', async () => {
  const browser = new TestClient(server);
  const { id } = await browser.me();
  await browser.data(SEND, { text: 'before the outage' });
  const port = Number(new URL(db.uri).port);

  db.process!.kill('SIGKILL');
  await new Promise((r) => db.process!.once('exit', r));

  const t0 = Date.now();
  const r = await browser.gql(SEND, { text: 'during the outage', clientId: 'during-1' });
  expect(Date.now() - t0).toBeLessThan(10000);
  expect(r.errors?.[0].extensions?.code).toBe('SERVICE_UNAVAILABLE');
  expect(r.status).toBe(503);
  // A known session and its user are held in memory: reading the identity needs no database.
  const me = await browser.gql<{ me: { id: string } }>('{ me { id } }');
  expect(me.data?.me.id).toBe(id);
  // A new visitor needs a new identity stored: refused, without internals.
  const newcomer = await new TestClient(server).gql('{ me { id } }');
  expect(newcomer.errors?.[0].extensions?.code).toBe('SERVICE_UNAVAILABLE');
  expect(newcomer.status).toBe(503);
  expect(JSON.stringify(newcomer)).not.toMatch(/Mongo|stack|at /);
  expect(await status('/readyz')).toBe(503);
  expect(await status('/healthz')).toBe(200);
  // Nor can a WebSocket without a cookie: refused with 503, not left hanging.
  const upgradeStatus = await new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    socket.once('open', () => reject(new Error('upgrade should be refused while the database is down')));
    socket.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
    socket.once('error', reject);
  });
  expect(upgradeStatus).toBe(503);

  // The database comes back on the same port with the same files.
  restarted = await startFerretDB({ dataDir: db.dataDir, port, dbName: 'anonymo' });
  let ok = false;
  await waitFor(
    async () => {
      const res = await browser.gql(SEND, { text: 'after the outage', clientId: 'after-1' });
      if (!res.errors) return (ok = true);
      expect(res.errors[0].extensions?.code).toBe('SERVICE_UNAVAILABLE');
      return false;
    },
    { timeout: 20000, interval: 250, what: 'sends to succeed again' },
  );
  expect(ok).toBe(true);
  expect(await status('/readyz')).toBe(200);

  // No partial write: the failed send stored nothing; the others are there exactly once.
  const { db: direct, close } = await openDb(restarted.uri);
  try {
    const texts = (await direct.collection('messages').find({}).toArray()).map((m) => m.text).sort();
    expect(texts).toEqual(['after the outage', 'before the outage']);
  } finally {
    await close();
  }
});
