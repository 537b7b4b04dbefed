import { TestClient, type Subscription, type WsTestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const PRESENCE = 'subscription { presenceChanged { online user { id username online } } }';
const ONLINE = '{ onlineUsers { id username online } }';
const GRACE_MS = 400;

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ env: { PRESENCE_GRACE_MS: String(GRACE_MS) } });
});
afterAll(async () => {
  await server.close();
});
afterEach(() => noSubscriptionsLeft(server));

async function onlineIds(c: TestClient): Promise<string[]> {
  return (await c.data<{ onlineUsers: Array<{ id: string }> }>(ONLINE)).onlineUsers.map((u) => u.id);
}

type PresenceEvent = { presenceChanged: { online: boolean; user: { id: string } } };

/** Waits until the server has processed socket closes down to `count` open connections. */
async function connectionsDownTo(count: number): Promise<void> {
  await waitFor(() => server.stats().connections === count, { what: `${count} open connections` });
}

/**
 * A positive sync point for "no offline event within the grace period": a marker user connects
 * and disconnects now. Its offline event is due one grace period after its close, which the
 * server processed after every close before it; once the watcher has the marker's event, an
 * offline event due earlier would have been published first.
 */
async function afterGracePeriod(events: Subscription<PresenceEvent>): Promise<void> {
  const marker = new TestClient(server);
  const m = await marker.me();
  const ws = marker.ws();
  await ws.connected();
  await ws.close();
  await events.waitFor(
    (items) => items.some((e) => e.presenceChanged.user.id === m.id && !e.presenceChanged.online),
    5000,
    'the marker user going offline',
  );
}

describe('presence', () => {
  test('a user is online while a WebSocket is open and goes offline after the grace period', async () => {
    const watcher = new TestClient(server);
    const watcherWs = watcher.ws();
    const alice = new TestClient(server);
    const a = await alice.me();
    let aliceWs: WsTestClient | undefined;
    try {
      const events = watcherWs.subscribe<PresenceEvent>(PRESENCE);
      await watcherWs.connected();
      await subscriptionsAttached(server, 1);
      expect(await onlineIds(watcher)).not.toContain(a.id);

      aliceWs = alice.ws();
      await aliceWs.connected();
      await events.waitFor(
        (items) => items.some((e) => e.presenceChanged.user.id === a.id && e.presenceChanged.online),
        5000,
        'online event',
      );
      expect(await onlineIds(watcher)).toContain(a.id);
      expect((await alice.data<{ me: { online: boolean } }>('{ me { online } }')).me.online).toBe(true);

      const closedAt = Date.now();
      await aliceWs.close();
      aliceWs = undefined;
      // Once the server has seen the close she is still online (grace period): a reload does not flap.
      await connectionsDownTo(1);
      expect(await onlineIds(watcher)).toContain(a.id);
      await events.waitFor(
        (items) => items.some((e) => e.presenceChanged.user.id === a.id && !e.presenceChanged.online),
        5000,
        'offline event',
      );
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS - 50);
      expect(await onlineIds(watcher)).not.toContain(a.id);
      const me = await alice.data<{ me: { online: boolean; lastSeenAt: string | null } }>(
        '{ me { online lastSeenAt } }',
      );
      expect(me.me.online).toBe(false);
      expect(me.me.lastSeenAt).not.toBeNull();
      const mine = events.items.filter((e) => e.presenceChanged.user.id === a.id).map((e) => e.presenceChanged.online);
      expect(mine).toEqual([true, false]);
    } finally {
      await aliceWs?.close();
      await watcherWs.close();
    }
  });

  test('several tabs count as one user: one online event, offline only after the last tab closes', async () => {
    const watcher = new TestClient(server);
    const watcherWs = watcher.ws();
    const bob = new TestClient(server);
    const b = await bob.me();
    let tab1: WsTestClient | undefined;
    let tab2: WsTestClient | undefined;
    try {
      const events = watcherWs.subscribe<PresenceEvent>(PRESENCE);
      await watcherWs.connected();
      await subscriptionsAttached(server, 1);
      // The tabs open only once the watcher listens (a client connects as soon as it is made).
      tab1 = bob.ws();
      tab2 = bob.ws();
      await tab1.connected();
      await tab2.connected();
      await events.waitFor((items) => items.some((e) => e.presenceChanged.user.id === b.id), 5000, 'online event');
      // Both tabs work.
      expect((await tab1.query('{ me { id } }')).data.me.id).toBe(b.id);
      expect((await tab2.query('{ me { id } }')).data.me.id).toBe(b.id);

      await tab1.close();
      await connectionsDownTo(2);
      await afterGracePeriod(events);
      expect(await onlineIds(watcher)).toContain(b.id);
      await tab2.close();
      await events.waitFor(
        (items) => items.some((e) => e.presenceChanged.user.id === b.id && !e.presenceChanged.online),
        5000,
        'offline event',
      );
      const mine = events.items.filter((e) => e.presenceChanged.user.id === b.id).map((e) => e.presenceChanged.online);
      expect(mine).toEqual([true, false]);
    } finally {
      await Promise.all([tab1?.close(), tab2?.close(), watcherWs.close()]);
    }
  });

  test('a reconnect within the grace period produces no presence events', async () => {
    const watcher = new TestClient(server);
    const watcherWs = watcher.ws();
    const carol = new TestClient(server);
    const c = await carol.me();
    try {
      const events = watcherWs.subscribe<PresenceEvent>(PRESENCE);
      await watcherWs.connected();
      await subscriptionsAttached(server, 1);
      const first = carol.ws();
      await first.connected();
      await events.waitFor((items) => items.some((e) => e.presenceChanged.user.id === c.id), 5000, 'online event');
      await first.close();
      await connectionsDownTo(1);
      const second = carol.ws(); // "page reload"
      await second.connected();
      await afterGracePeriod(events);
      expect(
        events.items.filter((e) => e.presenceChanged.user.id === c.id).map((e) => e.presenceChanged.online),
      ).toEqual([true]);
      await second.close();
    } finally {
      await watcherWs.close();
    }
  });

  test('after a restart, users left marked online are marked offline once the grace period passes', async () => {
    const { db, close } = await openDb(server.mongodbUri);
    // A user the previous process left online (it crashed before the grace period ended).
    const ghost = await db.collection('users').insertOne({
      username: `Ghost${Date.now()}`,
      avatarSeed: 'g',
      createdAt: new Date(),
      online: true,
      lastSeenAt: null,
    });
    const startedAt = Date.now();
    const restarted = await startServer({ dbName: server.dbName, env: { PRESENCE_GRACE_MS: String(GRACE_MS) } });
    try {
      await waitFor(async () => (await db.collection('users').findOne({ _id: ghost.insertedId }))?.online === false, {
        interval: 50,
        what: 'the ghost marked offline',
      });
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(GRACE_MS - 50);
      const doc = await db.collection('users').findOne({ _id: ghost.insertedId });
      expect(doc?.lastSeenAt).toBeInstanceOf(Date);
    } finally {
      await restarted.close();
      await close();
    }
  });
});
