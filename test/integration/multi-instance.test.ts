/**
 * Two real instances on one database and the local Redis (REDIS_URL, default
 * redis://127.0.0.1:6379) act as one chat: sessions, messages, ordering and replay.
 */
import { randomBytes } from 'node:crypto';
import { TestClient } from '../helpers/client';
import { freshDbName } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor, waitForValue } from '../helpers/wait';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// A prefix of this run's own, so parallel runs on the same Redis do not hear each other.
const REDIS_PREFIX = `anonymo-test-${randomBytes(4).toString('hex')}:`;

const SEND = `mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id text } }`;
const ADDED = `subscription Added($with: ID, $after: String) {
  messageAdded(with: $with, after: $after) { id text createdAt sender { id createdAt } recipient { id } mine }
}`;

type Added = {
  messageAdded: {
    id: string;
    text: string;
    createdAt: string;
    sender: { id: string; createdAt: string };
    recipient: { id: string } | null;
    mine: boolean;
  };
};

let a: TestServer;
let b: TestServer;
beforeAll(async () => {
  const dbName = freshDbName('multi');
  const env = { REDIS_URL, REDIS_PREFIX };
  a = await startServer({ dbName, env });
  b = await startServer({ dbName, env });
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});
afterEach(() => Promise.all([noSubscriptionsLeft(a), noSubscriptionsLeft(b)]));

/** The same browser (cookie) talking to another instance, as behind a load balancer. */
function via(server: TestServer, client: TestClient): TestClient {
  const other = new TestClient(server);
  other.cookie = client.cookie;
  return other;
}

const send = async (c: TestClient, text: string, to?: string) =>
  (await c.data<{ sendMessage: { id: string; text: string } }>(SEND, { input: { text, to } })).sendMessage;

test('both instances use the Redis transport', () => {
  // (services.pubsub is the transport wrapped for metrics)
  const transport = (s: TestServer) =>
    ((s.services.pubsub as { inner?: object }).inner ?? s.services.pubsub).constructor.name;
  expect(transport(a)).toBe('RedisPubSub');
  expect(transport(b)).toBe('RedisPubSub');
});

test('an identity made on one instance is the same identity on the other', async () => {
  const alice = new TestClient(a);
  const onA = await alice.me();
  const onB = await via(b, alice).me();
  expect(onB).toEqual(onA);
});

test('a lobby message sent through A reaches a subscriber on B, Dates intact', async () => {
  const alice = new TestClient(a);
  const bob = new TestClient(b);
  const aliceMe = await alice.me();
  await bob.me();
  const ws = bob.ws();
  try {
    const sub = ws.subscribe<Added>(ADDED);
    await ws.connected();
    await subscriptionsAttached(b, 1);
    const sent = await send(alice, 'from A to B');
    const [got] = await sub.waitForCount(1, 10000);
    expect(got.messageAdded).toMatchObject({ id: sent.id, text: 'from A to B', recipient: null, mine: false });
    expect(got.messageAdded.sender.id).toBe(aliceMe.id);
    // DateTimeISO serialises Dates only: a Date that arrived as a string would fail or differ.
    expect(new Date(got.messageAdded.createdAt).toISOString()).toBe(got.messageAdded.createdAt);
    expect(Math.abs(Date.now() - Date.parse(got.messageAdded.createdAt))).toBeLessThan(60000);
    expect(got.messageAdded.sender.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  } finally {
    await ws.close();
  }
});

test('a DM reaches both participants on different instances, and nobody else', async () => {
  const alice = new TestClient(a);
  const bob = new TestClient(b);
  const eve = new TestClient(b);
  const [am, bm, em] = [await alice.me(), await bob.me(), await eve.me()];
  const [aWs, bWs, eWs] = [alice.ws(), bob.ws(), eve.ws()];
  try {
    const aSub = aWs.subscribe<Added>(ADDED, { with: bm.id });
    const bSub = bWs.subscribe<Added>(ADDED, { with: am.id });
    const eLobby = eWs.subscribe<Added>(ADDED);
    const eWithA = eWs.subscribe<Added>(ADDED, { with: am.id });
    const eWithB = eWs.subscribe<Added>(ADDED, { with: bm.id });
    await Promise.all([aWs.connected(), bWs.connected(), eWs.connected()]);
    await Promise.all([subscriptionsAttached(a, 1), subscriptionsAttached(b, 4)]);
    const dm = await send(alice, 'psst', bm.id);
    const [onA] = await aSub.waitForCount(1, 10000);
    const [onB] = await bSub.waitForCount(1, 10000);
    expect(onA.messageAdded).toMatchObject({ id: dm.id, mine: true, recipient: { id: bm.id } });
    expect(onB.messageAdded).toMatchObject({ id: dm.id, mine: false, recipient: { id: bm.id } });
    // Markers sent after the DM on each of Eve's channels: once they are here, the DM would be too.
    const lobbyBefore = await eLobby.before(
      () => send(alice, 'lobby marker'),
      (i) => i.messageAdded.text === 'lobby marker',
      10000,
    );
    const withABefore = await eWithA.before(
      () => send(alice, 'marker from alice', em.id),
      (i) => i.messageAdded.text === 'marker from alice',
      10000,
    );
    const withBBefore = await eWithB.before(
      () => send(bob, 'marker from bob', em.id),
      (i) => i.messageAdded.text === 'marker from bob',
      10000,
    );
    expect(lobbyBefore.map((i) => i.messageAdded.id)).not.toContain(dm.id);
    expect(eLobby.items.map((i) => i.messageAdded.id)).not.toContain(dm.id);
    expect(withABefore).toHaveLength(0);
    expect(withBBefore).toHaveLength(0);
  } finally {
    await Promise.all([aWs.close(), bWs.close(), eWs.close()]);
  }
});

test('what a user created on one instance is known not to have yet (blocks, settings) stays current when it changes through the other', async () => {
  const BLOCK = 'mutation($id: ID!) { blockUser(id: $id) }';
  const BLOCKED = '{ blockedUsers { id } }';
  const TTL = 'mutation($with: ID, $seconds: Int) { setMessageTtl(with: $with, seconds: $seconds) }';
  const SEND_EXPIRING = 'mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id expiresAt } }';
  // All three made on A, which therefore holds their block lists and settings as empty.
  const [alice, bob, carol] = [new TestClient(a), new TestClient(a), new TestClient(a)];
  const [am, bm, cm] = [await alice.me(), await bob.me(), await carol.me()];

  // Bob blocks Alice through B. Once A lists the block for him (its copy of his list, the one
  // a send checks), Alice's first DM to him through A is refused.
  await via(b, bob).data(BLOCK, { id: am.id });
  await waitForValue(
    async () => (await bob.data<{ blockedUsers: Array<{ id: string }> }>(BLOCKED)).blockedUsers.map((u) => u.id),
    (ids) => ids.includes(am.id),
    { what: 'instance A to hear of the block' },
  );
  expect(await alice.errorCode(SEND, { input: { text: 'hi bob', to: bm.id } })).toBe('FORBIDDEN');

  // Carol turns on disappearing messages with Alice through B, then writes to her there. A
  // heard the setting before that message (one publisher, in order): Alice's answer through
  // A, the first message A stores in the conversation, expires too.
  const ws = alice.ws();
  try {
    const fromCarol = ws.subscribe<Added>(ADDED, { with: cm.id });
    await ws.connected();
    await subscriptionsAttached(a, 1);
    await via(b, carol).data(TTL, { with: am.id, seconds: 3600 });
    const sent = await send(via(b, carol), 'this will disappear', am.id);
    const [got] = await fromCarol.waitForCount(1, 10000);
    expect(got.messageAdded.id).toBe(sent.id);
    const reply = await alice.data<{ sendMessage: { expiresAt: string | null } }>(SEND_EXPIRING, {
      input: { text: 'so will this', to: cm.id },
    });
    expect(reply.sendMessage.expiresAt).not.toBeNull();
  } finally {
    await ws.close();
  }
});

test('a stranger chat between users created on one instance, ended through the other, closes their DMs on the first', async () => {
  const FIND = 'mutation($interests: [String!]) { findStranger(interests: $interests) }';
  const END = 'mutation($with: ID!) { endStrangerChat(with: $with) }';
  const EVENTS = 'subscription { strangerEvents { kind with { id } } }';
  type Events = { strangerEvents: { kind: 'MATCHED' | 'ENDED'; with: { id: string } } };
  // Both made on A, which therefore knows they have had no stranger chat (none read).
  const [alice, bob] = [new TestClient(a), new TestClient(a)];
  const [am, bm] = [await alice.me(), await bob.me()];
  const [aliceWs, bobWs] = [alice.ws(), via(b, bob).ws()];
  try {
    const aliceEvents = aliceWs.subscribe<Events>(EVENTS);
    bobWs.subscribe<Events>(EVENTS);
    await Promise.all([aliceWs.connected(), bobWs.connected()]);
    await Promise.all([subscriptionsAttached(a, 1), subscriptionsAttached(b, 1)]);
    const interests = [`firstdm${randomBytes(3).toString('hex')}`];
    await via(b, alice).data(FIND, { interests });
    await via(b, bob).data(FIND, { interests });
    const kinds = () => aliceEvents.items.map((i) => `${i.strangerEvents.kind}:${i.strangerEvents.with.id}`);
    await aliceEvents.waitFor(() => kinds().includes(`MATCHED:${bm.id}`), 10000, 'MATCHED');
    await send(alice, 'hi stranger', bm.id);
    // Bob ends the chat through B. The ENDED event reaches Alice's subscription on A after A
    // heard of the end (one publisher, in order): from then on A refuses their DMs.
    await via(b, bob).data(END, { with: am.id });
    await aliceEvents.waitFor(() => kinds().includes(`ENDED:${bm.id}`), 10000, 'ENDED');
    expect(await alice.errorCode(SEND, { input: { text: 'wait', to: bm.id } })).toBe('FORBIDDEN');
    expect(await bob.errorCode(SEND, { input: { text: 'bye', to: am.id } })).toBe('FORBIDDEN');
  } finally {
    await Promise.all([aliceWs.close(), bobWs.close()]);
  }
});

test('concurrent sends through both instances reach subscribers on both exactly once, in one order', async () => {
  const alice = new TestClient(a);
  const bob = new TestClient(b);
  const [am, bm] = [await alice.me(), await bob.me()];
  const watchA = new TestClient(a);
  const watchB = new TestClient(b);
  await watchA.me();
  await watchB.me();
  const [wsA, wsB, aliceWs] = [watchA.ws(), watchB.ws(), via(b, alice).ws()];
  try {
    const lobbyA = wsA.subscribe<Added>(ADDED);
    const lobbyB = wsB.subscribe<Added>(ADDED);
    // Alice watches her DM with Bob from instance B while both send through A and B.
    const dmOnB = aliceWs.subscribe<Added>(ADDED, { with: bm.id });
    await Promise.all([wsA.connected(), wsB.connected(), aliceWs.connected()]);
    await Promise.all([subscriptionsAttached(a, 1), subscriptionsAttached(b, 2)]);
    const N = 20;
    const sent = await Promise.all([
      ...Array.from({ length: N }, (_, i) => send(alice, `a${i}`)),
      ...Array.from({ length: N }, (_, i) => send(bob, `b${i}`)),
      ...Array.from({ length: 5 }, (_, i) => send(alice, `dm-a${i}`, bm.id)),
      ...Array.from({ length: 5 }, (_, i) => send(via(b, bob), `dm-b${i}`, am.id)),
    ]);
    const lobbyIds = sent.filter((m) => m.id.startsWith('lobby:')).map((m) => m.id);
    const dmIds = sent.filter((m) => m.id.startsWith('dm:')).map((m) => m.id);
    expect(new Set(lobbyIds).size).toBe(2 * N);
    expect(new Set(dmIds).size).toBe(10);
    // Sequence numbers are gap-free: the ids are exactly 1..2N of the lobby, whoever stored them.
    const seqs = lobbyIds.map((id) => Number(id.split(':').pop())).sort((x, y) => x - y);
    expect(seqs[seqs.length - 1] - seqs[0]).toBe(2 * N - 1);
    const expected = [...lobbyIds].sort();

    await lobbyA.waitForCount(2 * N, 15000);
    await lobbyB.waitForCount(2 * N, 15000);
    await dmOnB.waitForCount(10, 15000);
    // Nothing more (no duplicate): markers sent now arrive right after what was sent above.
    const lobbyMarker = await send(bob, 'lobby marker');
    const dmMarker = await send(bob, 'dm marker', am.id);
    const isMarker = (x: Added) => x.messageAdded.id === lobbyMarker.id || x.messageAdded.id === dmMarker.id;
    const gotA = await lobbyA.before(() => Promise.resolve(), isMarker, 10000);
    const gotB = await lobbyB.before(() => Promise.resolve(), isMarker, 10000);
    const dms = await dmOnB.before(() => Promise.resolve(), isMarker, 10000);
    expect(gotA.map((x) => x.messageAdded.id)).toEqual(expected);
    expect(gotB.map((x) => x.messageAdded.id)).toEqual(expected);
    expect(dms.map((x) => x.messageAdded.id)).toEqual([...dmIds].sort());
    expect(
      dms
        .filter((x) => x.messageAdded.mine)
        .map((x) => x.messageAdded.text)
        .sort(),
    ).toEqual(['dm-a0', 'dm-a1', 'dm-a2', 'dm-a3', 'dm-a4']);
  } finally {
    await Promise.all([wsA.close(), wsB.close(), aliceWs.close()]);
  }
});

test('a subscriber on B resuming with `after` gets everything sent through A since then', async () => {
  const alice = new TestClient(a);
  const bob = new TestClient(b);
  await alice.me();
  await bob.me();
  const before = await send(alice, 'seen before the reconnect');
  const missed = [];
  for (let i = 0; i < 12; i++) missed.push(await send(i % 2 ? alice : via(b, alice), `missed ${i}`));
  const ws = bob.ws();
  try {
    const sub = ws.subscribe<Added>(ADDED, { after: before.id });
    await sub.waitForCount(12, 10000);
    const live = await send(alice, 'live after resume');
    await sub.waitFor((xs) => xs.some((x) => x.messageAdded.id === live.id), 10000, 'the live message');
    // Nothing more (no duplicate): a marker sent now arrives right after the live message.
    const items = await sub.before(
      () => send(bob, 'marker'),
      (x) => x.messageAdded.text === 'marker',
      10000,
    );
    expect(items.map((x) => x.messageAdded.id)).toEqual([...missed.map((m) => m.id), live.id]);
  } finally {
    await ws.close();
  }
});

describe('presence, typing and identity across instances', () => {
  const PRESENCE = 'subscription { presenceChanged { online user { id } } }';
  const ONLINE = '{ onlineUsers { id } }';
  const onlineOn = async (server: TestServer) =>
    (await new TestClient(server).data<{ onlineUsers: Array<{ id: string }> }>(ONLINE)).onlineUsers.map((u) => u.id);

  test('tabs on two instances count as one user: one online event, offline only after the last tab closes', async () => {
    const watcher = new TestClient(b);
    const watcherWs = watcher.ws();
    const alice = new TestClient(a);
    const me = await alice.me();
    try {
      const events = watcherWs.subscribe<{ presenceChanged: { online: boolean; user: { id: string } } }>(PRESENCE);
      await watcherWs.connected();
      await subscriptionsAttached(b, 1);
      const tabOnA = alice.ws();
      await tabOnA.connected();
      await events.waitFor((items) => items.some((e) => e.presenceChanged.user.id === me.id), 5000, 'online on B');
      const tabOnB = via(b, alice).ws();
      await tabOnB.connected();
      expect(await onlineOn(a)).toContain(me.id);
      expect(await onlineOn(b)).toContain(me.id);

      await tabOnA.close();
      // Past the grace period on A, she is still online through B. A marker user that connects to
      // and leaves A after A saw the tab close goes offline one grace period later: once the
      // watcher has that, an offline event for Alice due earlier would have come first.
      await waitFor(() => a.stats().connections === 0, { what: 'A to see the tab close' });
      const marker = new TestClient(a);
      const markerMe = await marker.me();
      const markerWs = marker.ws();
      await markerWs.connected();
      await markerWs.close();
      await events.waitFor(
        (items) => items.some((e) => e.presenceChanged.user.id === markerMe.id && !e.presenceChanged.online),
        5000,
        'the marker user offline',
      );
      expect(await onlineOn(a)).toContain(me.id);
      await tabOnB.close();
      await events.waitFor(
        (items) => items.some((e) => e.presenceChanged.user.id === me.id && !e.presenceChanged.online),
        5000,
        'offline',
      );
      expect(
        events.items.filter((e) => e.presenceChanged.user.id === me.id).map((e) => e.presenceChanged.online),
      ).toEqual([true, false]);
      expect(await onlineOn(a)).not.toContain(me.id);
    } finally {
      await watcherWs.close();
    }
  });

  test('typing sent through A is seen by the other user subscribed on B, and expires there', async () => {
    const alice = new TestClient(a);
    const bob = new TestClient(b);
    const [am, bm] = [await alice.me(), await bob.me()];
    const bobWs = bob.ws();
    try {
      const seen = bobWs.subscribe<{ typing: { typing: boolean; user: { id: string } } }>(
        'subscription($w: ID) { typing(with: $w) { typing user { id } } }',
        { w: am.id },
      );
      await bobWs.connected();
      await subscriptionsAttached(b, 1);
      await alice.data('mutation($w: ID) { setTyping(with: $w, typing: true) }', { w: bm.id });
      await seen.waitForCount(1);
      expect(seen.items[0].typing).toEqual({ typing: true, user: { id: am.id } });
      await seen.waitForCount(2, 8000);
      expect(seen.items[1].typing.typing).toBe(false);
    } finally {
      await bobWs.close();
    }
  });

  test('a conversation update from a message sent through A reaches the recipient on B', async () => {
    const alice = new TestClient(a);
    const bob = new TestClient(b);
    const [am, bm] = [await alice.me(), await bob.me()];
    const bobWs = bob.ws();
    try {
      const updates = bobWs.subscribe<{ conversationUpdated: { unreadCount: number; with: { id: string } } }>(
        'subscription { conversationUpdated { unreadCount with { id } } }',
      );
      await bobWs.connected();
      await subscriptionsAttached(b, 1);
      await send(alice, 'across instances', bm.id);
      await updates.waitForCount(1);
      expect(updates.items[0].conversationUpdated).toEqual({ unreadCount: 1, with: { id: am.id } });
    } finally {
      await bobWs.close();
    }
  });

  test('resetIdentity through A closes the old session’s WebSocket on B', async () => {
    const alice = new TestClient(a);
    await alice.me();
    const onB = via(b, alice).ws();
    try {
      await onB.connected();
      await alice.data('mutation { resetIdentity { id } }');
      await waitFor(() => onB.closes.length > 0).catch(() => undefined); // the assertion says what came instead
      expect(onB.closes[0]?.code).toBe(4001);
    } finally {
      await onB.close();
    }
  });
});

test('a read on B moves the unread count of the next conversationUpdated that A pushes (cached read markers follow read events)', async () => {
  const [alice, bob] = [new TestClient(a), new TestClient(a)];
  const [am, bm] = await Promise.all([alice.me(), bob.me()]);
  // Bob's list and Alice's receipts are served by A; Alice sends through A, so A holds both read markers in memory.
  const [bobWs, aliceWs] = [bob.ws(), alice.ws()];
  try {
    const updates = bobWs.subscribe<{
      conversationUpdated: { unreadCount: number; lastMessage: { text: string } | null };
    }>('subscription { conversationUpdated { unreadCount lastMessage { text } } }');
    const receipts = aliceWs.subscribe<{ messagesRead: { reader: { id: string } } }>(
      'subscription($with: ID!) { messagesRead(with: $with) { reader { id } } }',
      { with: bm.id },
    );
    await subscriptionsAttached(a, 2);
    const unreadOf = async (text: string) => {
      const items = await updates.waitFor((got) => got.some((u) => u.conversationUpdated.lastMessage?.text === text));
      return items.find((u) => u.conversationUpdated.lastMessage?.text === text)!.conversationUpdated.unreadCount;
    };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await send(alice, `r${i}`, bm.id)).id);
    expect(await unreadOf('r2')).toBe(3);
    // Bob reads up to r1 through the other instance: only its read event (over Redis) tells A.
    const read = await via(b, bob).data<{ markRead: number }>(
      'mutation($with: ID!, $upTo: ID!) { markRead(with: $with, upTo: $upTo) }',
      { with: am.id, upTo: ids[1] },
    );
    expect(read.markRead).toBe(2);
    // The receipt reaching Alice on A is that read event arriving at A.
    await receipts.waitFor((got) => got.some((r) => r.messagesRead.reader.id === bm.id));
    await send(alice, 'r3', bm.id);
    // r2 and r3 are unread; a marker A did not move would still count 4.
    expect(await unreadOf('r3')).toBe(2);
  } finally {
    await Promise.all([bobWs.close(), aliceWs.close()]);
  }
});
