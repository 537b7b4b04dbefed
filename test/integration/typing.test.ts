import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';

const TYPING = 'subscription($with: ID) { typing(with: $with) { typing user { id username } } }';
const SET = 'mutation($with: ID, $typing: Boolean!) { setTyping(with: $with, typing: $typing) }';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ env: { RATE_LIMIT_TYPING: '20/10s' } });
});
afterAll(async () => {
  await server.close();
});
afterEach(() => noSubscriptionsLeft(server));

describe('typing', () => {
  test('in a direct conversation only the other user sees it; the typist never gets their own', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const eve = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    await eve.me();
    const [aWs, bWs, eWs] = [alice.ws(), bob.ws(), eve.ws()];
    try {
      const aliceSees = aWs.subscribe(TYPING, { with: b.id });
      const bobSees = bWs.subscribe(TYPING, { with: a.id });
      const eveLobby = eWs.subscribe(TYPING);
      const eveWithA = eWs.subscribe(TYPING, { with: a.id });
      await Promise.all([aWs.connected(), bWs.connected(), eWs.connected()]);
      await subscriptionsAttached(server, 4);

      expect((await alice.data(SET, { with: b.id, typing: true })).setTyping).toBe(true);
      const [started] = await bobSees.waitForCount(1);
      expect(started.typing).toEqual({ typing: true, user: { id: a.id, username: a.username } });
      expect((await alice.data(SET, { with: b.id, typing: false })).setTyping).toBe(true);
      await bobSees.waitForCount(2);
      expect(bobSees.items[1].typing).toMatchObject({ typing: false, user: { id: a.id } });

      // Prove Eve's and Alice's subscriptions are live with a lobby typing event from Bob.
      await bob.data(SET, { typing: true });
      await eveLobby.waitForCount(1);
      expect(eveLobby.items[0].typing.user.id).toBe(b.id);
      expect(eveWithA.items).toEqual([]);
      expect(aliceSees.items).toEqual([]);
    } finally {
      await Promise.all([aWs.close(), bWs.close(), eWs.close()]);
    }
  });

  test('in the lobby everyone else sees it, not the typist', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    const [aWs, bWs] = [alice.ws(), bob.ws()];
    try {
      const aliceSees = aWs.subscribe(TYPING);
      const bobSees = bWs.subscribe(TYPING);
      await Promise.all([aWs.connected(), bWs.connected()]);
      await subscriptionsAttached(server, 2);
      await alice.data(SET, { typing: true });
      await bobSees.waitFor(
        (items) => items.some((i) => i.typing.user.id === a.id && i.typing.typing),
        5000,
        'alice typing',
      );
      // Bob typing afterwards is the sync point: once Alice sees it, her own event would have come first.
      const beforeBob = await aliceSees.before(
        () => bob.data(SET, { typing: true }),
        (i) => i.typing.user.id === b.id,
      );
      expect(beforeBob.filter((i) => i.typing.user.id === a.id)).toEqual([]);
      expect(aliceSees.items.filter((i) => i.typing.user.id === a.id)).toEqual([]);
    } finally {
      await Promise.all([aWs.close(), bWs.close()]);
    }
  });

  test('a typing: true that is not renewed expires after 5 s with a typing: false event; renewals are coalesced', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    const bWs = bob.ws();
    try {
      const bobSees = bWs.subscribe(TYPING, { with: a.id });
      await bWs.connected();
      await subscriptionsAttached(server, 1);
      const started = Date.now();
      expect((await alice.data(SET, { with: b.id, typing: true })).setTyping).toBe(true);
      // A renewal right away is coalesced: nothing new is published.
      expect((await alice.data(SET, { with: b.id, typing: true })).setTyping).toBe(false);
      await bobSees.waitForCount(1);
      await bobSees.waitForCount(2, 8000);
      expect(bobSees.items.map((i) => i.typing.typing)).toEqual([true, false]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    } finally {
      await bWs.close();
    }
  });

  test('typing is never stored, and flooding it is RATE_LIMITED', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const b = await bob.me();
    await alice.me();
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const collectionsBefore = (await db.listCollections().toArray()).map((c) => c.name).sort();
      const codes: string[] = [];
      for (let i = 0; i < 30; i++) {
        const r = await alice.gql(SET, { with: b.id, typing: i % 2 === 0 });
        if (r.errors) codes.push(String(r.errors[0].extensions?.code));
      }
      expect(codes.length).toBeGreaterThan(0);
      expect(new Set(codes)).toEqual(new Set(['RATE_LIMITED']));
      const r = await alice.gql(SET, { with: b.id, typing: true });
      expect(r.errors?.[0].extensions?.retryAfterMs).toBeGreaterThan(0);
      expect((await db.listCollections().toArray()).map((c) => c.name).sort()).toEqual(collectionsBefore);
    } finally {
      await close();
    }
  });

  test('typing with an unknown or malformed user is BAD_USER_INPUT', async () => {
    const alice = new TestClient(server);
    expect(await alice.errorCode(SET, { with: 'bogus', typing: true })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(SET, { with: 'aaaaaaaaaaaaaaaaaaaaaaaa', typing: true })).toBe('BAD_USER_INPUT');
  });
});
