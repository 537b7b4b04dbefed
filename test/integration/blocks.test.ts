/** Blocking through the real API: history, live messages, typing, direct messages, restarts. */
import { TestClient } from '../helpers/client';
import { freshDbName, openDb } from '../helpers/db';
import { noSubscriptionsLeft, sample, scrape, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';

const SEND = 'mutation($text: String!, $to: ID) { sendMessage(input: { text: $text, to: $to }) { id text } }';
const HISTORY = 'query($with: ID) { messages(with: $with, last: 50) { edges { node { text sender { id } } } } }';
const ADDED = 'subscription($with: ID) { messageAdded(with: $with) { text sender { id } } }';
const TYPING = 'subscription($with: ID) { typing(with: $with) { typing user { id } } }';
const SET_TYPING = 'mutation($with: ID, $typing: Boolean!) { setTyping(with: $with, typing: $typing) }';
const BLOCK = 'mutation($id: ID!) { blockUser(id: $id) }';
const EDIT = 'mutation($id: ID!, $text: String!) { editMessage(id: $id, text: $text) { id } }';
const UPDATED = 'subscription { messageUpdated { id text } }';
const ROOM_SEND = 'mutation($text: String!, $room: ID) { sendMessage(input: { text: $text, room: $room }) { id } }';
const ROOM_HISTORY = 'query($room: ID) { messages(room: $room, last: 50) { edges { node { text sender { id } } } } }';
const ROOM_ADDED = 'subscription($room: ID) { messageAdded(room: $room) { text sender { id } } }';
const ROOM_TYPING = 'subscription($room: ID) { typing(room: $room) { typing user { id } } }';
const SET_ROOM_TYPING = 'mutation($room: ID, $typing: Boolean!) { setTyping(room: $room, typing: $typing) }';
const UNBLOCK = 'mutation($id: ID!) { unblockUser(id: $id) }';
const BLOCKED = '{ blockedUsers { id username } }';

type Added = { messageAdded: { text: string; sender: { id: string } } };

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});
afterEach(() => noSubscriptionsLeft(server));

const texts = (r: { messages: { edges: Array<{ node: { text: string } }> } }) =>
  r.messages.edges.map((e) => e.node.text);

describe('blocking', () => {
  test('the blocker no longer sees the blocked user’s lobby messages, live or in history; others still do', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const carol = new TestClient(server);
    const [, b] = [await alice.me(), await bob.me(), await carol.me()];
    await bob.data(SEND, { text: 'bob before the block' });
    expect(await alice.data(BLOCK, { id: b.id })).toEqual({ blockUser: true });
    expect((await alice.data(BLOCKED)).blockedUsers).toEqual([{ id: b.id, username: b.username }]);

    const [aWs, cWs] = [alice.ws(), carol.ws()];
    try {
      const aliceLive = aWs.subscribe<Added>(ADDED);
      const carolLive = cWs.subscribe<Added>(ADDED);
      await subscriptionsAttached(server, 2);
      await bob.data(SEND, { text: 'bob after the block' });
      await carolLive.waitFor((items) => items.some((i) => i.messageAdded.text === 'bob after the block'));
      const aliceBefore = await aliceLive.before(
        () => carol.data(SEND, { text: 'carol marker' }),
        (i) => i.messageAdded.text === 'carol marker',
      );
      expect(aliceBefore).toEqual([]);

      const aliceHistory = texts(await alice.data(HISTORY));
      expect(aliceHistory).toContain('carol marker');
      expect(aliceHistory.filter((t) => t.startsWith('bob'))).toEqual([]);
      expect(texts(await carol.data(HISTORY))).toEqual(
        expect.arrayContaining(['bob before the block', 'bob after the block']),
      );
      // The blocked user still sees their own messages.
      expect(texts(await bob.data(HISTORY))).toContain('bob after the block');

      expect(await alice.data(UNBLOCK, { id: b.id })).toEqual({ unblockUser: true });
      await bob.data(SEND, { text: 'bob after the unblock' });
      await aliceLive.waitFor((items) => items.some((i) => i.messageAdded.text === 'bob after the unblock'));
      expect((await alice.data(BLOCKED)).blockedUsers).toEqual([]);
    } finally {
      await Promise.all([aWs.close(), cWs.close()]);
    }
  });

  test('direct messages from a blocked user are FORBIDDEN; the blocker can still write to them', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    await bob.data(SEND, { text: 'hi alice', to: a.id });
    await alice.data(BLOCK, { id: b.id });
    expect(await bob.errorCode(SEND, { text: 'are you there?', to: a.id })).toBe('FORBIDDEN');
    // Blocking is one-way: Alice's messages to Bob go through, and a repeat block is a no-op.
    await alice.data(SEND, { text: 'please stop', to: b.id });
    expect(await alice.data(BLOCK, { id: b.id })).toEqual({ blockUser: true });
    expect(texts(await alice.data(HISTORY, { with: b.id }))).toEqual(['please stop']);
    expect(texts(await bob.data(HISTORY, { with: a.id }))).toEqual(['hi alice', 'please stop']);
    await alice.data(UNBLOCK, { id: b.id });
    await bob.data(SEND, { text: 'sorry', to: a.id });
    expect(texts(await alice.data(HISTORY, { with: b.id }))).toEqual(['hi alice', 'please stop', 'sorry']);
  });

  test('a blocked user’s typing is hidden from the blocker, not from others', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const carol = new TestClient(server);
    const [, b, c] = [await alice.me(), await bob.me(), await carol.me()];
    await alice.data(BLOCK, { id: b.id });
    const [aWs, cWs] = [alice.ws(), carol.ws()];
    try {
      const aliceSees = aWs.subscribe<{ typing: { user: { id: string } } }>(TYPING);
      const carolSees = cWs.subscribe<{ typing: { user: { id: string } } }>(TYPING);
      await subscriptionsAttached(server, 2);
      await bob.data(SET_TYPING, { typing: true });
      await carolSees.waitFor((items) => items.some((i) => i.typing.user.id === b.id));
      const aliceBefore = await aliceSees.before(
        () => carol.data(SET_TYPING, { typing: true }),
        (i) => i.typing.user.id === c.id,
      );
      expect(aliceBefore).toEqual([]);
    } finally {
      await Promise.all([aWs.close(), cWs.close()]);
    }
  });

  test('in a room, a blocked member’s messages and typing are hidden from the blocker, live and in history; other members still get them', async () => {
    const [alice, bob, carol] = [new TestClient(server), new TestClient(server), new TestClient(server)];
    const [, b, c] = [await alice.me(), await bob.me(), await carol.me()];
    const { createRoom: room } = await alice.data<{ createRoom: { id: string; slug: string } }>(
      'mutation { createRoom(input: { title: "block test", public: true }) { id slug } }',
    );
    for (const m of [bob, carol]) await m.data('mutation($slug: String!) { joinRoom(slug: $slug) { id } }', room);
    await bob.data(ROOM_SEND, { text: 'bob before the block', room: room.id });
    await alice.data(BLOCK, { id: b.id });

    const [aWs, cWs] = [alice.ws(), carol.ws()];
    try {
      const aliceLive = aWs.subscribe<Added>(ROOM_ADDED, { room: room.id });
      const carolLive = cWs.subscribe<Added>(ROOM_ADDED, { room: room.id });
      const aliceTyping = aWs.subscribe<{ typing: { user: { id: string } } }>(ROOM_TYPING, { room: room.id });
      const carolTyping = cWs.subscribe<{ typing: { user: { id: string } } }>(ROOM_TYPING, { room: room.id });
      await subscriptionsAttached(server, 4);

      await bob.data(ROOM_SEND, { text: 'bob after the block', room: room.id });
      await bob.data(SET_ROOM_TYPING, { room: room.id, typing: true });
      await carolLive.waitFor((items) => items.some((i) => i.messageAdded.text === 'bob after the block'));
      await carolTyping.waitFor((items) => items.some((i) => i.typing.user.id === b.id));

      const aliceBefore = await aliceLive.before(
        () => carol.data(ROOM_SEND, { text: 'carol marker', room: room.id }),
        (i) => i.messageAdded.text === 'carol marker',
      );
      expect(aliceBefore).toEqual([]);
      const typingBefore = await aliceTyping.before(
        () => carol.data(SET_ROOM_TYPING, { room: room.id, typing: true }),
        (i) => i.typing.user.id === c.id,
      );
      expect(typingBefore).toEqual([]);

      expect(texts(await alice.data(ROOM_HISTORY, { room: room.id }))).toEqual(['carol marker']);
      expect(texts(await carol.data(ROOM_HISTORY, { room: room.id }))).toEqual([
        'bob before the block',
        'bob after the block',
        'carol marker',
      ]);
      expect(texts(await bob.data(ROOM_HISTORY, { room: room.id }))).toContain('bob after the block');
    } finally {
      await Promise.all([aWs.close(), cWs.close()]);
    }
  });

  test('a blocked user’s edits are not pushed to the blocker on messageUpdated; others get them', async () => {
    const [alice, bob, carol] = [new TestClient(server), new TestClient(server), new TestClient(server)];
    const [, b] = [await alice.me(), await bob.me(), await carol.me()];
    const bobs = (await bob.data<{ sendMessage: { id: string } }>(SEND, { text: 'bob original' })).sendMessage.id;
    const carols = (await carol.data<{ sendMessage: { id: string } }>(SEND, { text: 'carol original' })).sendMessage.id;
    await alice.data(BLOCK, { id: b.id });
    const [aWs, cWs] = [alice.ws(), carol.ws()];
    try {
      type Updated = { messageUpdated: { id: string; text: string } };
      const aliceSees = aWs.subscribe<Updated>(UPDATED);
      const carolSees = cWs.subscribe<Updated>(UPDATED);
      await subscriptionsAttached(server, 2);
      await bob.data(EDIT, { id: bobs, text: 'bob edited' });
      await carolSees.waitFor((items) => items.some((i) => i.messageUpdated.text === 'bob edited'));
      const aliceBefore = await aliceSees.before(
        () => carol.data(EDIT, { id: carols, text: 'carol edited' }),
        (i) => i.messageUpdated.id === carols,
      );
      expect(aliceBefore).toEqual([]);
    } finally {
      await Promise.all([aWs.close(), cWs.close()]);
    }
  });

  test('viewers who block no one share one execution per event and group: blocking viewers add no executions', async () => {
    const [sender, marker, quiet] = [new TestClient(server), new TestClient(server), new TestClient(server)];
    const [s, , q] = [await sender.me(), await marker.me(), await quiet.me()];
    const viewers = Array.from({ length: 8 }, () => new TestClient(server));
    await Promise.all(viewers.map((v) => v.me()));
    // Two viewers block someone who sends nothing, one blocks the sender.
    await viewers[0].data(BLOCK, { id: q.id });
    await viewers[1].data(BLOCK, { id: q.id });
    await viewers[2].data(BLOCK, { id: s.id });
    const other = new TestClient(server); // a second group: another selection
    await other.me();
    const sockets = [...viewers, other].map((v) => v.ws());
    try {
      const subs = viewers.map((_, i) => sockets[i].subscribe<Added>(ADDED));
      const otherSub = sockets[8].subscribe<{ messageAdded: { text: string } }>(
        'subscription { messageAdded { text } }',
      );
      await subscriptionsAttached(server, 9);
      const counters = async () => {
        const text = await scrape(server);
        return {
          executions: sample(text, 'anonymo_fanout_executions_total', { kind: 'message' }) ?? 0,
          deliveries: sample(text, 'anonymo_subscription_deliveries_total', { kind: 'message' }) ?? 0,
        };
      };
      const before = await counters();
      await sender.data(SEND, { text: 'one event' });
      const got = (t: string) => (items: Added[]) => items.some((i) => i.messageAdded.text === t);
      await Promise.all([
        ...subs.filter((_, i) => i !== 2).map((x) => x.waitFor(got('one event'))),
        otherSub.waitFor((items) => items.some((i) => i.messageAdded.text === 'one event')),
      ]);
      expect(
        await subs[2].before(
          () => marker.data(SEND, { text: 'marker' }),
          (i) => i.messageAdded.text === 'marker',
        ),
      ).toEqual([]);
      await Promise.all(subs.map((x) => x.waitFor(got('marker'))));
      const after = await counters();
      // Two events × two groups, not × nine viewers; the viewer blocking the sender was skipped.
      expect(after.executions - before.executions).toBe(4);
      expect(after.deliveries - before.deliveries).toBe(8 + 9);
    } finally {
      await Promise.all(sockets.map((w) => w.close()));
    }
  });

  test('blocking checks its argument: malformed, unknown and own ids are BAD_USER_INPUT', async () => {
    const alice = new TestClient(server);
    const a = await alice.me();
    expect(await alice.errorCode(BLOCK, { id: 'nope' })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(BLOCK, { id: 'f'.repeat(24) })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(BLOCK, { id: a.id })).toBe('BAD_USER_INPUT');
    expect((await alice.data(BLOCKED)).blockedUsers).toEqual([]);
  });
});

test('a refused first DM to a new partner records nothing: the send reads while the block check runs, but writes only after it', async () => {
  const CONVERSATIONS = '{ conversations { with { id } } }';
  const alice = new TestClient(server);
  const bob = new TestClient(server);
  const [a, b] = [await alice.me(), await bob.me()];
  await bob.data(BLOCK, { id: a.id });
  expect(await alice.errorCode(SEND, { text: 'hello?', to: b.id })).toBe('FORBIDDEN');
  // A later send (its own reads done after the refused one's) to someone else goes through.
  const carol = new TestClient(server);
  const c = await carol.me();
  await alice.data(SEND, { text: 'hello carol', to: c.id });
  expect((await bob.data<{ conversations: unknown[] }>(CONVERSATIONS)).conversations).toEqual([]);
  expect((await alice.data<{ conversations: unknown[] }>(CONVERSATIONS)).conversations).toEqual([
    { with: { id: c.id } },
  ]);
  const { db, close } = await openDb(server.mongodbUri);
  try {
    expect(await db.collection('inbox_entries').countDocuments({ owner: b.id })).toBe(0);
    expect(await db.collection('inbox_entries').countDocuments({ owner: a.id, with: b.id })).toBe(0);
    expect(
      await db
        .collection('inbox_pairs')
        .countDocuments({ _id: { $in: [`${a.id}:${b.id}`, `${b.id}:${a.id}`] } } as never),
    ).toBe(0);
    expect(await db.collection('messages').countDocuments({ conversation: { $regex: b.id } })).toBe(0);
  } finally {
    await close();
  }
});

test('blocks survive a restart', async () => {
  const dbName = freshDbName('blocks');
  const first = await startServer({ dbName });
  const alice = new TestClient(first);
  const bob = new TestClient(first);
  const carol = new TestClient(first);
  const [a, b, c] = [await alice.me(), await bob.me(), await carol.me()];
  await alice.data(BLOCK, { id: b.id });
  await alice.data(BLOCK, { id: c.id });
  await alice.data(UNBLOCK, { id: c.id });
  await bob.data(SEND, { text: 'bob in the lobby' });
  await carol.data(SEND, { text: 'carol in the lobby' });
  await first.close();

  const second = await startServer({ dbName });
  try {
    for (const client of [alice, bob, carol]) Object.assign(client, { server: second });
    expect((await alice.data(BLOCKED)).blockedUsers.map((u: { id: string }) => u.id)).toEqual([b.id]);
    expect(await bob.errorCode(SEND, { text: 'still there?', to: a.id })).toBe('FORBIDDEN');
    expect(texts(await alice.data(HISTORY))).toEqual(['carol in the lobby']);
  } finally {
    await second.close();
  }
});
