/**
 * The message lifecycle in rooms, through the real API on two instances (one database, the
 * local Redis): edits, deletions, reactions and replies by members; messageUpdated(room) live
 * on both instances and replayed after a disconnect; private rooms indistinguishable from
 * unknown ones for non-members; disappearing room messages (set at creation, changed by the
 * creator only) purged from the database; leaving a private room ends the leaver's room
 * subscriptions on every instance; deleteMyData takes the user out of their rooms and erases
 * the reports they filed and the blocks they made.
 */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { TestClient } from '../helpers/client';
import { freshDbName, openDb } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitForValue } from '../helpers/wait';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_PREFIX = `anonymo-test-${randomBytes(4).toString('hex')}:`;

const CREATE = `mutation($input: CreateRoomInput!) { createRoom(input: $input) { id slug memberCount messageTtlSeconds } }`;
const JOIN = 'mutation($slug: String!) { joinRoom(slug: $slug) { id } }';
const LEAVE = 'mutation($room: ID!) { leaveRoom(room: $room) }';
const ROOM = 'query($slug: String!) { room(slug: $slug) { memberCount messageTtlSeconds } }';
const SEND = `mutation($room: ID, $text: String!, $replyTo: ID) {
  sendMessage(input: { room: $room, text: $text, replyTo: $replyTo }) { id createdAt expiresAt replyTo { id text } }
}`;
const EDIT = 'mutation($id: ID!, $text: String!) { editMessage(id: $id, text: $text) { id text editedAt } }';
const DELETE = 'mutation($id: ID!) { deleteMessage(id: $id) { id text deletedAt } }';
const REACT = 'mutation($id: ID!, $emoji: String!, $on: Boolean!) { react(id: $id, emoji: $emoji, on: $on) { id } }';
const TTL = 'mutation($room: ID, $seconds: Int) { setMessageTtl(room: $room, seconds: $seconds) }';
const CURSOR = 'query($room: ID) { messageUpdatesCursor(room: $room) }';
const PAGE = 'query($room: ID) { messages(room: $room, last: 20) { edges { node { id text } } } }';
const UPDATED = `subscription($room: ID, $after: String) {
  messageUpdated(room: $room, after: $after) { id text deletedAt updateCursor room { id } reactions { emoji count mine } }
}`;
const ADDED = 'subscription($room: ID) { messageAdded(room: $room) { id text } }';
const TYPING = 'subscription($room: ID) { typing(room: $room) { typing } }';
const REPORT = 'mutation($id: ID!) { reportMessage(id: $id, reason: SPAM) }';
const BLOCK = 'mutation($id: ID!) { blockUser(id: $id) }';
const FORGET = 'mutation { deleteMyData }';
const FIND = 'mutation { findStranger }';
const END_CHAT = 'mutation($with: ID!) { endStrangerChat(with: $with) }';

interface Update {
  messageUpdated: {
    id: string;
    text: string;
    deletedAt: string | null;
    updateCursor: string;
    room: { id: string } | null;
    reactions: Array<{ emoji: string; count: number; mine: boolean }>;
  };
}
interface Sent {
  id: string;
  createdAt: string;
  expiresAt: string | null;
  replyTo: { id: string; text: string } | null;
}

let a: TestServer;
let b: TestServer;
let db: Awaited<ReturnType<typeof openDb>>;
beforeAll(async () => {
  const dbName = freshDbName('room-lifecycle');
  const env = { REDIS_URL, REDIS_PREFIX, PURGE_INTERVAL_MS: '200' };
  a = await startServer({ dbName, env });
  b = await startServer({ dbName, env });
  db = await openDb(a.mongodbUri);
});
afterAll(async () => {
  await db?.close();
  await Promise.all([a?.close(), b?.close()]);
});
afterEach(() => Promise.all([noSubscriptionsLeft(a), noSubscriptionsLeft(b)]));

/** A browser on `server`; `via` is the same browser reaching the other instance. */
async function user(server: TestServer) {
  const c = new TestClient(server);
  const { id } = await c.me();
  const via = (s: TestServer) => Object.assign(new TestClient(s), { cookie: c.cookie });
  return Object.assign(c, { id, via });
}

const createRoom = async (c: TestClient, isPublic: boolean, messageTtlSeconds?: number) =>
  (
    await c.data<{ createRoom: { id: string; slug: string; memberCount: number; messageTtlSeconds: number | null } }>(
      CREATE,
      { input: { title: `room ${randomBytes(3).toString('hex')}`, public: isPublic, messageTtlSeconds } },
    )
  ).createRoom;
const send = async (c: TestClient, room: string | undefined, text: string, replyTo?: string) =>
  (await c.data<{ sendMessage: Sent }>(SEND, { room, text, replyTo })).sendMessage;
const summary = (u: Update) => {
  const m = u.messageUpdated;
  return [m.id, m.deletedAt ? '<deleted>' : m.text, m.reactions.map((r) => `${r.emoji}${r.count}`).join('')];
};
const roomInfo = async (c: TestClient, slug: string) =>
  (await c.data<{ room: { memberCount: number; messageTtlSeconds: number | null } | null }>(ROOM, { slug })).room;

/** The error a client gets: code and message (what a prober could compare). */
async function errorOf(c: TestClient, query: string, variables: Record<string, unknown>) {
  const r = await c.gql(query, variables);
  expect(r.errors).toHaveLength(1);
  return { code: r.errors![0].extensions?.code, message: r.errors![0].message };
}

describe('room message lifecycle', () => {
  test('members edit, react, reply and delete; messageUpdated(room) reaches members on both instances once, in order', async () => {
    const alice = await user(a);
    const bob = await user(b);
    const room = await createRoom(alice, false);
    await bob.data(JOIN, { slug: room.slug });
    const m1 = await send(alice, room.id, 'first');
    const m2 = await send(bob, room.id, 'an answer', m1.id);
    expect(m2.replyTo).toEqual({ id: m1.id, text: 'first' });

    const wsA = alice.ws();
    const wsB = bob.ws();
    try {
      const subA = wsA.subscribe<Update>(UPDATED, { room: room.id });
      const subB = wsB.subscribe<Update>(UPDATED, { room: room.id });
      await Promise.all([subscriptionsAttached(a, 1), subscriptionsAttached(b, 1)]);

      expect((await alice.data(EDIT, { id: m1.id, text: 'first (edited)' })).editMessage.editedAt).not.toBeNull();
      await bob.data(REACT, { id: m1.id, emoji: '👍', on: true });
      await alice.via(b).data(REACT, { id: m2.id, emoji: '❤️', on: true });
      await bob.via(a).data(DELETE, { id: m2.id });
      const marker = await send(alice, room.id, 'marker');
      await alice.data(EDIT, { id: marker.id, text: 'marker!' });

      const expected = [
        [m1.id, 'first (edited)', ''],
        [m1.id, 'first (edited)', '👍1'],
        [m2.id, 'an answer', '❤️1'],
        [m2.id, '<deleted>', ''],
        [marker.id, 'marker!', ''],
      ];
      for (const sub of [subA, subB]) {
        const items = await sub.waitFor((got) => got.some((u) => u.messageUpdated.id === marker.id), 8000, 'marker');
        expect(items.map(summary)).toEqual(expected);
        expect(items.every((u) => u.messageUpdated.room?.id === room.id)).toBe(true);
      }
      // `mine` is rendered per viewer: Bob reacted with 👍, Alice did not.
      expect(subB.items[1].messageUpdated.reactions).toEqual([{ emoji: '👍', count: 1, mine: true }]);
      expect(subA.items[1].messageUpdated.reactions).toEqual([{ emoji: '👍', count: 1, mine: false }]);
      // History on both instances shows the latest state.
      for (const reader of [alice, bob]) {
        const page = await reader.data<{ messages: { edges: Array<{ node: { id: string; text: string } }> } }>(PAGE, {
          room: room.id,
        });
        expect(page.messages.edges.map((e) => e.node.text)).toEqual(['first (edited)', '', 'marker!']);
      }
    } finally {
      await Promise.all([wsA.close(), wsB.close()]);
    }
  });

  test('after a disconnect, messageUpdated(room, after) replays each room message changed meanwhile once, then goes on live', async () => {
    const alice = await user(a);
    const bob = await user(b);
    const room = await createRoom(alice, true);
    await bob.data(JOIN, { slug: room.slug });
    const m1 = await send(alice, room.id, 'one');
    const m2 = await send(alice, room.id, 'two');
    const m3 = await send(bob, room.id, 'three');
    const ws1 = bob.ws();
    let cursor: string;
    try {
      const sub = ws1.subscribe<Update>(UPDATED, { room: room.id });
      await subscriptionsAttached(b, 1);
      await alice.data(EDIT, { id: m1.id, text: 'one v2' });
      cursor = (await sub.waitForCount(1))[0].messageUpdated.updateCursor;
    } finally {
      await ws1.close();
    }
    // While Bob is away, changes on both instances:
    await alice.data(EDIT, { id: m2.id, text: 'two v2' });
    await alice.via(b).data(REACT, { id: m3.id, emoji: '🎉', on: true });
    await alice.via(b).data(EDIT, { id: m2.id, text: 'two v3' });
    await alice.data(DELETE, { id: m1.id });

    const ws2 = bob.ws();
    try {
      const sub = ws2.subscribe<Update>(UPDATED, { room: room.id, after: cursor });
      const replayed = await sub.waitForCount(3);
      expect(replayed.map(summary)).toEqual([
        [m3.id, 'three', '🎉1'],
        [m2.id, 'two v3', ''],
        [m1.id, '<deleted>', ''],
      ]);
      await subscriptionsAttached(b, 1);
      expect(await alice.errorCode(EDIT, { id: m3.id, text: 'not mine' })).toBe('FORBIDDEN');
      await bob.via(a).data(EDIT, { id: m3.id, text: 'three v2' });
      const all = await sub.waitForCount(4);
      expect(summary(all[3])).toEqual([m3.id, 'three v2', '🎉1']);
      expect(all).toHaveLength(4);
    } finally {
      await ws2.close();
    }
  });

  test('a private room’s messages are unknown to non-members (the same error as an unknown room); a public room’s are FORBIDDEN to change until joining', async () => {
    const alice = await user(a);
    const bob = await user(b);
    const carol = await user(a);
    const secret = await createRoom(alice, false);
    const open = await createRoom(alice, true);
    await bob.data(JOIN, { slug: secret.slug });
    const hidden = await send(alice, secret.id, 'members only');
    const visible = await send(alice, open.id, 'for everyone');
    const madeUp = `room:${'Q'.repeat(16)}:000000000001`;

    // Carol is not in the private room: every lifecycle operation answers as for an unknown message.
    for (const [query, vars] of [
      [EDIT, { text: 'x' }],
      [DELETE, {}],
      [REACT, { emoji: '👍', on: true }],
    ] as const) {
      const unknown = await errorOf(carol, query, { ...vars, id: madeUp });
      expect(unknown.code).toBe('BAD_USER_INPUT');
      expect(await errorOf(carol, query, { ...vars, id: hidden.id })).toEqual(unknown);
    }
    // ... and the room itself as an unknown room, for the cursor, the subscription and the TTL.
    const unknownRoom = await errorOf(carol, CURSOR, { room: 'Q'.repeat(16) });
    expect(unknownRoom.code).toBe('BAD_USER_INPUT');
    expect(await errorOf(carol, CURSOR, { room: secret.id })).toEqual(unknownRoom);
    expect(await errorOf(carol, TTL, { room: secret.id, seconds: 60 })).toEqual(
      await errorOf(carol, TTL, { room: 'Q'.repeat(16), seconds: 60 }),
    );
    const ws = carol.ws();
    try {
      const sub = ws.subscribe<Update>(UPDATED, { room: secret.id });
      await sub.ended();
      expect(JSON.stringify(sub.errors)).toContain('not a known room');
    } finally {
      await ws.close();
    }

    // A public room: Carol may read (and follow updates) but not change anything until she joins.
    expect(await carol.errorCode(REACT, { id: visible.id, emoji: '👍', on: true })).toBe('FORBIDDEN');
    expect(await carol.errorCode(SEND, { room: open.id, text: 're', replyTo: visible.id })).toBe('FORBIDDEN');
    expect(
      (await carol.data<{ messageUpdatesCursor: string }>(CURSOR, { room: open.id })).messageUpdatesCursor,
    ).toEqual(expect.any(String));
    await carol.data(JOIN, { slug: open.slug });
    await carol.data(REACT, { id: visible.id, emoji: '👍', on: true });
    // A member who is not the sender may not edit or delete; a reply must stay in its room.
    expect(await bob.errorCode(EDIT, { id: hidden.id, text: 'mine now' })).toBe('FORBIDDEN');
    expect(await bob.errorCode(DELETE, { id: hidden.id })).toBe('FORBIDDEN');
    expect(await bob.errorCode(SEND, { room: secret.id, text: 'x', replyTo: visible.id })).toBe('BAD_USER_INPUT');
  });
});

describe('disappearing room messages', () => {
  /** Stands for the passing of time: these messages' expiry is now in the past (messages and the purge's log). */
  const expireNow = async (ids: string[]) => {
    const past = new Date(Date.now() - 1000);
    await db.db.collection('messages').updateMany({ _id: { $in: ids } } as never, { $set: { expiresAt: past } });
    await db.db.collection('message_expiries').updateMany({ _id: { $in: ids } } as never, { $set: { at: past } });
  };
  const withContent = (ids: string[]) =>
    db.db.collection('messages').countDocuments({
      _id: { $in: ids },
      $or: [{ text: { $exists: true } }, { sender: { $exists: true } }],
    } as never);

  test('a room created with messageTtlSeconds applies it; only the creator changes it; expired room messages leave the database', async () => {
    const alice = await user(a);
    const bob = await user(b);
    const carol = await user(a);
    const room = await createRoom(alice, false, 60);
    expect(room.messageTtlSeconds).toBe(60);
    await bob.data(JOIN, { slug: room.slug });
    const m1 = await send(bob, room.id, 'gone in a minute');
    expect(Date.parse(m1.expiresAt!) - Date.parse(m1.createdAt)).toBe(60000);

    // Only the creator: a member gets FORBIDDEN, a non-member of the private room BAD_USER_INPUT.
    expect(await bob.errorCode(TTL, { room: room.id, seconds: 3600 })).toBe('FORBIDDEN');
    expect(await carol.errorCode(TTL, { room: room.id, seconds: 3600 })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(TTL, { room: room.id, seconds: 10 })).toBe('BAD_USER_INPUT');
    expect((await alice.data(TTL, { room: room.id, seconds: 3600 })).setMessageTtl).toBe(true);
    // Every instance knows the new setting at once (Room.messageTtlSeconds and new messages' expiresAt).
    expect(await roomInfo(bob, room.slug)).toMatchObject({ messageTtlSeconds: 3600 });
    const m2 = await send(bob, room.id, 'gone in an hour');
    expect(Date.parse(m2.expiresAt!) - Date.parse(m2.createdAt)).toBe(3600000);
    await alice.via(b).data(TTL, { room: room.id, seconds: null });
    expect(await roomInfo(alice, room.slug)).toMatchObject({ messageTtlSeconds: null });
    const kept = await send(bob, room.id, 'stays');
    expect(kept.expiresAt).toBeNull();

    await expireNow([m1.id, m2.id]);
    await waitForValue(
      () => withContent([m1.id, m2.id]),
      (n) => n === 0,
      { what: 'the purge of the room messages', timeout: 10000 },
    );
    expect(await db.db.collection('messages').countDocuments({ conversation: `room:${room.id}` })).toBe(3);
    expect(await db.db.collection('messages').countDocuments({ conversation: `room:${room.id}`, text: 'stays' })).toBe(
      1,
    );
    for (const reader of [alice, bob]) {
      const page = await reader.data<{ messages: { edges: Array<{ node: { text: string } }> } }>(PAGE, {
        room: room.id,
      });
      expect(page.messages.edges.map((e) => e.node.text)).toEqual(['stays']);
    }
  });
});

describe('leaving and erasure', () => {
  test('leaving a private room ends the leaver’s subscriptions to it on both instances; other subscriptions go on', async () => {
    const alice = await user(a);
    const bob = await user(b);
    const room = await createRoom(alice, false);
    await bob.data(JOIN, { slug: room.slug });
    const wsA = bob.via(a).ws();
    const wsB = bob.ws();
    const aliceWs = alice.ws();
    try {
      const added = wsA.subscribe(ADDED, { room: room.id });
      const updated = wsA.subscribe<Update>(UPDATED, { room: room.id });
      const typing = wsA.subscribe(TYPING, { room: room.id });
      const addedB = wsB.subscribe(ADDED, { room: room.id });
      const lobby = wsB.subscribe<{ messageAdded: { text: string } }>(ADDED, {});
      const stays = aliceWs.subscribe<{ messageAdded: { text: string } }>(ADDED, { room: room.id });
      await Promise.all([subscriptionsAttached(a, 4), subscriptionsAttached(b, 2)]);

      expect((await bob.data(LEAVE, { room: room.id })).leaveRoom).toBe(true);
      for (const sub of [added, updated, typing, addedB]) {
        await sub.ended();
        expect(JSON.stringify(sub.errors)).toContain('no longer a member');
      }
      // Bob's connections stay open: his lobby subscription still receives; Alice's room one too.
      await send(alice, undefined, 'lobby after leaving');
      await send(alice, room.id, 'room after leaving');
      expect((await lobby.waitForCount(1))[0].messageAdded.text).toBe('lobby after leaving');
      expect((await stays.waitForCount(1))[0].messageAdded.text).toBe('room after leaving');
      expect(added.items).toHaveLength(0);
    } finally {
      await Promise.all([wsA.close(), wsB.close(), aliceWs.close()]);
    }
  });

  test('deleteMyData takes the user out of every room (counts exact) and erases the reports they filed and the blocks they made', async () => {
    const alice = await user(a);
    const bob = await user(b);
    const carol = await user(a);
    const open = await createRoom(alice, true);
    const secret = await createRoom(bob, false);
    await bob.data(JOIN, { slug: open.slug });
    await alice.data(JOIN, { slug: secret.slug });
    await carol.data(JOIN, { slug: open.slug });
    expect(await roomInfo(alice, open.slug)).toMatchObject({ memberCount: 3 });
    expect(await roomInfo(alice, secret.slug)).toMatchObject({ memberCount: 2 });
    const spam = await send(carol, undefined, 'buy now');
    await bob.data(REPORT, { id: spam.id });
    // A stranger chat with Dave, ended: recorded in the database and in the Redis matcher.
    const dave = await user(b);
    await bob.data(FIND);
    await dave.data(FIND);
    expect((await bob.data(END_CHAT, { with: dave.id })).endStrangerChat).toBe(true);
    await bob.data(BLOCK, { id: carol.id });

    const ws = bob.via(a).ws();
    try {
      const sub = ws.subscribe(ADDED, { room: secret.id });
      await subscriptionsAttached(a, 1);
      expect((await bob.data(FORGET)).deleteMyData).toBe(true);
      await sub.ended();
    } finally {
      await ws.close();
    }

    expect(await roomInfo(alice, open.slug)).toMatchObject({ memberCount: 2 });
    expect(await roomInfo(alice.via(b), secret.slug)).toMatchObject({ memberCount: 1 });
    const c = db.db;
    expect(await c.collection('room_members').countDocuments({ user: bob.id })).toBe(0);
    expect(await c.collection('report_claims').countDocuments({ _id: `${spam.id}|${bob.id}` as never })).toBe(0);
    expect(await c.collection('report_slots').countDocuments({ reporter: bob.id })).toBe(0);
    // The report keeps its place (the tally of distinct reporters), without who filed it or why.
    expect(await c.collection('report_slots').countDocuments({ message: spam.id, erased: true, reason: null })).toBe(1);
    expect(await c.collection('block_log').countDocuments({ blocker: bob.id })).toBe(0);
    expect(await c.collection('counters').countDocuments({ _id: { $regex: `^user:${bob.id}#` } } as never)).toBe(0);
    expect(await c.collection('rooms').countDocuments({ createdBy: bob.id })).toBe(0);
    expect(await c.collection('stranger_ended').countDocuments({ _id: { $regex: bob.id } } as never)).toBe(0);
    const redis = new Redis(REDIS_URL);
    try {
      expect(await redis.exists(`${REDIS_PREFIX}stranger:ended:${bob.id}`)).toBe(0);
      expect(await redis.sismember(`${REDIS_PREFIX}stranger:ended:${dave.id}`, bob.id)).toBe(0);
    } finally {
      redis.disconnect();
    }
    // The room Bob created lives on with its other member, who can still write in it.
    await send(alice, secret.id, 'still here');
    // Leaving and joining again keeps the counts exact.
    await carol.data(LEAVE, { room: open.id });
    await carol.data(JOIN, { slug: open.slug });
    expect(await roomInfo(carol, open.slug)).toMatchObject({ memberCount: 2 });
  });
});
