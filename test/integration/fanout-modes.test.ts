/**
 * The subscription guarantees hold in both fan-out modes: `grouped` (one execution per group
 * of identical subscribers) and `per-subscriber` (graphql-js executes per subscriber, the
 * stock graphql-ws way, kept as the benchmark baseline).
 */
import { TestClient } from '../helpers/client';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';

const SEND = `mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id text } }`;
const ADDED = `subscription Added($with: ID, $after: String) {
  messageAdded(with: $with, after: $after) { id text sender { id username } recipient { id } }
}`;
const ADDED_MINE = `subscription AddedMine($with: ID) { messageAdded(with: $with) { id text mine } }`;

type Added = { messageAdded: { id: string; text: string; mine?: boolean; sender?: { id: string } } };

describe.each(['grouped', 'per-subscriber'] as const)('FANOUT=%s', (mode) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { FANOUT: mode } });
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(() => noSubscriptionsLeft(server));

  const send = async (c: TestClient, text: string, to?: string) =>
    (await c.data<{ sendMessage: { id: string; text: string } }>(SEND, { input: { text, to } })).sendMessage;

  test('every lobby subscriber gets the message, with `mine` rendered for each viewer', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const carol = new TestClient(server);
    const aliceMe = await alice.me();
    await bob.me();
    await carol.me();
    const [aWs, bWs, cWs] = [alice.ws(), bob.ws(), carol.ws()];
    try {
      const aSub = aWs.subscribe<Added>(ADDED_MINE);
      const bSub = bWs.subscribe<Added>(ADDED_MINE);
      const cSub = cWs.subscribe<Added>(ADDED);
      await Promise.all([aWs.connected(), bWs.connected(), cWs.connected()]);
      await subscriptionsAttached(server, 3);
      const sent = await send(alice, `hello ${mode}`);
      const [a] = await aSub.waitForCount(1);
      const [b] = await bSub.waitForCount(1);
      const [c] = await cSub.waitForCount(1);
      expect(a.messageAdded).toEqual({ id: sent.id, text: `hello ${mode}`, mine: true });
      expect(b.messageAdded).toEqual({ id: sent.id, text: `hello ${mode}`, mine: false });
      expect(c.messageAdded).toMatchObject({ id: sent.id, sender: { id: aliceMe.id }, recipient: null });
    } finally {
      await Promise.all([aWs.close(), bWs.close(), cWs.close()]);
    }
  });

  test('concurrent sends arrive at every subscriber exactly once, in sequence order', async () => {
    const senders = [new TestClient(server), new TestClient(server), new TestClient(server)];
    const watcher = new TestClient(server);
    await watcher.me();
    const ws = watcher.ws();
    try {
      const plain = ws.subscribe<Added>(ADDED);
      const withMine = ws.subscribe<Added>(ADDED_MINE);
      await ws.connected();
      await subscriptionsAttached(server, 2);
      const sent = await Promise.all(
        Array.from({ length: 30 }, (_, i) => send(senders[i % senders.length], `burst ${i}`)),
      );
      const expected = sent.map((m) => m.id).sort();
      await Promise.all([plain, withMine].map((sub) => sub.waitForCount(30, 10000)));
      // Nothing more (no duplicate): a marker sent now arrives right after the 30.
      const marker = await send(senders[0], `marker ${mode}`);
      for (const sub of [plain, withMine]) {
        const items = await sub.before(
          () => Promise.resolve(),
          (x) => x.messageAdded.id === marker.id,
        );
        const ids = items.map((x) => x.messageAdded.id);
        expect(ids).toHaveLength(30);
        // Ids embed zero-padded sequence numbers: sorted order is sequence order.
        expect(ids).toEqual(expected);
        expect(items.length).toBe(30);
      }
    } finally {
      await ws.close();
    }
  });

  test('resuming with `after` replays what was missed, then continues live without duplicates', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const b = await bob.me();
    const a = await alice.me();
    const first = [];
    for (let i = 0; i < 5; i++) first.push(await send(alice, `dm ${i}`, b.id));
    const bWs = bob.ws();
    try {
      const sub = bWs.subscribe<Added>(ADDED, { with: a.id, after: first[1].id });
      await sub.waitForCount(3, 10000);
      const live = await send(alice, 'dm live', b.id);
      await sub.waitForCount(4, 10000);
      // Nothing more (no duplicate): a marker sent now arrives right after these four.
      const items = await sub.before(
        () => send(alice, 'dm marker', b.id),
        (x) => x.messageAdded.text === 'dm marker',
      );
      expect(items.map((x) => x.messageAdded.id)).toEqual([first[2].id, first[3].id, first[4].id, live.id]);
      expect(items[3].messageAdded.text).toBe('dm live');
    } finally {
      await bWs.close();
    }
  });

  test('a direct message reaches only its two participants', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const eve = new TestClient(server);
    const [a, b, e] = [await alice.me(), await bob.me(), await eve.me()];
    const [bWs, eWs] = [bob.ws(), eve.ws()];
    try {
      const bSub = bWs.subscribe<Added>(ADDED, { with: a.id });
      const eLobby = eWs.subscribe<Added>(ADDED);
      const eWithA = eWs.subscribe<Added>(ADDED, { with: a.id });
      await Promise.all([bWs.connected(), eWs.connected()]);
      await subscriptionsAttached(server, 3);
      const dm = await send(alice, 'just for bob', b.id);
      const [got] = await bSub.waitForCount(1);
      expect(got.messageAdded.id).toBe(dm.id);
      // Markers sent after the DM, on each of Eve's channels: once they are here, the DM would be too.
      const lobbyBefore = await eLobby.before(
        () => send(alice, 'lobby marker'),
        (x) => x.messageAdded.text === 'lobby marker',
      );
      const withABefore = await eWithA.before(
        () => send(alice, 'eve marker', e.id),
        (x) => x.messageAdded.text === 'eve marker',
      );
      expect(lobbyBefore.filter((x) => x.messageAdded.id === dm.id)).toHaveLength(0);
      expect(eLobby.items.filter((x) => x.messageAdded.id === dm.id)).toHaveLength(0);
      expect(withABefore).toHaveLength(0);
    } finally {
      await Promise.all([bWs.close(), eWs.close()]);
    }
  });

  test('a cursor from another conversation is BAD_USER_INPUT', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const b = await bob.me();
    await alice.me();
    const lobbyMsg = await send(alice, 'in the lobby');
    const ws = alice.ws();
    try {
      const sub = ws.subscribe<Added>(ADDED, { with: b.id, after: lobbyMsg.id });
      await sub.ended();
      expect(JSON.stringify(sub.errors)).toContain('BAD_USER_INPUT');
    } finally {
      await ws.close();
    }
  });
});
