/**
 * Rooms through the real API: creating, joining by slug, leaving, listing; messages, live
 * delivery and typing with `room`; private-room isolation as seen by a third user; exact
 * member counts under concurrent joins; the configured limits.
 */
import type { GraphQLFormattedError } from 'graphql';
import { TestClient } from '../helpers/client';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { nextMillisecond, waitForValue } from '../helpers/wait';

const ROOM_FIELDS = 'id slug title public memberCount joined createdAt messageTtlSeconds online';
const CREATE = `mutation($input: CreateRoomInput!) { createRoom(input: $input) { ${ROOM_FIELDS} } }`;
const JOIN = `mutation($slug: String!) { joinRoom(slug: $slug) { ${ROOM_FIELDS} } }`;
const LEAVE = 'mutation($room: ID!) { leaveRoom(room: $room) }';
const ROOM = `query($slug: String!) { room(slug: $slug) { ${ROOM_FIELDS} } }`;
const ROOMS = `query($first: Int, $after: String) {
  rooms(first: $first, after: $after) { edges { cursor node { id slug title memberCount } } pageInfo { hasNextPage endCursor } }
}`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id text room { id slug } recipient { id } } }`;
const MESSAGES = `query($room: ID, $with: ID, $after: String) {
  messages(room: $room, with: $with, after: $after) { edges { cursor node { id text room { id } } } }
}`;
const ADDED = `subscription($room: ID, $after: String) { messageAdded(room: $room, after: $after) { id text room { id joined } } }`;
const TYPING = 'subscription($room: ID) { typing(room: $room) { typing user { id } } }';
const SET_TYPING = 'mutation($room: ID, $typing: Boolean!) { setTyping(room: $room, typing: $typing) }';
const ONLINE = `query($slug: String!, $first: Int, $after: String) {
  room(slug: $slug) { online onlineMembers(first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }
}`;

interface RoomView {
  id: string;
  slug: string;
  title: string;
  public: boolean;
  memberCount: number;
  joined: boolean;
  online: number;
  messageTtlSeconds: number | null;
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ env: { ROOM_MAX_MEMBERS: '50', ROOMS_PER_USER: '50', ROOMS_CREATED_PER_DAY: '50' } });
});
afterAll(async () => {
  await server?.close();
});
afterEach(() => noSubscriptionsLeft(server));

async function user(s: TestServer = server): Promise<TestClient & { id: string }> {
  const c = new TestClient(s);
  const { id } = await c.me();
  return Object.assign(c, { id });
}

const create = async (c: TestClient, title: string, isPublic: boolean, ttl?: number) =>
  (
    await c.data<{ createRoom: RoomView }>(CREATE, {
      input: { title, public: isPublic, ...(ttl ? { messageTtlSeconds: ttl } : {}) },
    })
  ).createRoom;
const join = async (c: TestClient, slug: string) => (await c.data<{ joinRoom: RoomView }>(JOIN, { slug })).joinRoom;
const roomBySlug = async (c: TestClient, slug: string) =>
  (await c.data<{ room: RoomView | null }>(ROOM, { slug })).room;

/** An error as a client sees it, without where in the document it happened. */
async function errorOf(c: TestClient, query: string, variables: Record<string, unknown>) {
  const r = await c.gql(query, variables);
  expect(r.errors).toHaveLength(1);
  const { message, extensions } = r.errors![0];
  return { message, extensions };
}

describe('creating and finding rooms', () => {
  test('a public room gets a slug from its title, unique; the creator is its first member', async () => {
    const alice = await user();
    const first = await create(alice, '  Café Chat: Night Owls!  ', true, 3600);
    expect(first).toMatchObject({
      title: 'Café Chat: Night Owls!',
      slug: 'cafe-chat-night-owls',
      public: true,
      memberCount: 1,
      joined: true,
      messageTtlSeconds: 3600,
    });
    const second = await create(alice, 'cafe chat night owls', true);
    expect(second.slug).toBe('cafe-chat-night-owls-2');
    expect(second.id).not.toBe(first.id);
    expect(await roomBySlug(alice, first.slug)).toMatchObject({ id: first.id, joined: true, memberCount: 1 });
  });

  test('a private room’s slug is an unguessable invite of at least 10 URL-safe characters', async () => {
    const alice = await user();
    const slugs = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const room = await create(alice, 'Secret plans', false);
      expect(room.public).toBe(false);
      expect(room.slug).toMatch(/^[A-Za-z0-9_-]{10,}$/);
      expect(room.slug).not.toContain('secret');
      slugs.add(room.slug);
    }
    expect(slugs.size).toBe(3);
  });

  test('bad titles, TTLs and slugs are BAD_USER_INPUT; room(slug) is null for an unknown slug', async () => {
    const alice = await user();
    expect(await alice.errorCode(CREATE, { input: { title: '   ', public: true } })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(CREATE, { input: { title: 'x'.repeat(81), public: true } })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(CREATE, { input: { title: 'ok', public: true, messageTtlSeconds: 5 } })).toBe(
      'BAD_USER_INPUT',
    );
    expect(await alice.errorCode(JOIN, { slug: 'no-such-room-anywhere' })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(JOIN, { slug: '../../etc' })).toBe('BAD_USER_INPUT');
    expect(await roomBySlug(alice, 'no-such-room-anywhere')).toBeNull();
  });

  test('rooms lists public rooms only, most recently active first, a page at a time', async () => {
    const alice = await user();
    const quiet = await create(alice, 'Quiet room', true);
    await nextMillisecond();
    const hidden = await create(alice, 'Hidden room', false);
    await nextMillisecond();
    const busy = await create(alice, 'Busy room', true);
    await nextMillisecond();
    // A message makes the quiet room the most active one.
    await alice.data(SEND, { input: { text: 'hello', room: quiet.id } });
    const listed = await waitForValue(
      async () =>
        (await alice.data<{ rooms: { edges: Array<{ node: { id: string } }> } }>(ROOMS, { first: 100 })).rooms,
      (r) => r.edges[0]?.node.id === quiet.id,
      { what: 'the quiet room to become the most active' },
    );
    const ids = listed.edges.map((e) => e.node.id);
    expect(ids).not.toContain(hidden.id);
    expect(ids.indexOf(quiet.id)).toBeLessThan(ids.indexOf(busy.id));

    // Relay pagination: one at a time reaches every room once, in the same order.
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 50; i++) {
      const page: {
        rooms: { edges: Array<{ node: { id: string } }>; pageInfo: { hasNextPage: boolean; endCursor: string } };
      } = await alice.data(ROOMS, { first: 1, after });
      seen.push(...page.rooms.edges.map((e) => e.node.id));
      if (!page.rooms.pageInfo.hasNextPage) break;
      after = page.rooms.pageInfo.endCursor;
    }
    expect(seen).toEqual(ids);
    expect(await alice.errorCode(ROOMS, { first: 101 })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(ROOMS, { after: 'bm90LWEtY3Vyc29y' })).toBe('BAD_USER_INPUT');
  });
});

describe('room messages', () => {
  test('anyone reads a public room, only members write; messages carry their room', async () => {
    const alice = await user();
    const bob = await user();
    const room = await create(alice, 'Open mic', true);
    const sent = await alice.data<{ sendMessage: { id: string; room: { id: string } } }>(SEND, {
      input: { text: 'first', room: room.id },
    });
    expect(sent.sendMessage).toMatchObject({ room: { id: room.id, slug: room.slug }, recipient: null });

    const read = await bob.data<{ messages: { edges: Array<{ node: { text: string } }> } }>(MESSAGES, {
      room: room.id,
    });
    expect(read.messages.edges.map((e) => e.node.text)).toEqual(['first']);
    expect(await bob.errorCode(SEND, { input: { text: 'let me in', room: room.id } })).toBe('FORBIDDEN');
    expect(await bob.errorCode(SET_TYPING, { room: room.id, typing: true })).toBe('FORBIDDEN');

    await join(bob, room.slug);
    await bob.data(SEND, { input: { text: 'joined now', room: room.id } });
    const after = await bob.data<{ messages: { edges: Array<{ node: { text: string } }> } }>(MESSAGES, {
      room: room.id,
    });
    expect(after.messages.edges.map((e) => e.node.text)).toEqual(['first', 'joined now']);
    // The lobby does not see room messages.
    const lobby = await bob.data<{ messages: { edges: Array<{ node: { text: string } }> } }>(MESSAGES, {});
    expect(lobby.messages.edges.map((e) => e.node.text)).not.toContain('joined now');
  });

  test('naming both a user and a room is BAD_USER_INPUT everywhere', async () => {
    const alice = await user();
    const bob = await user();
    const room = await create(alice, 'Both', true);
    expect(await alice.errorCode(MESSAGES, { room: room.id, with: bob.id })).toBe('BAD_USER_INPUT');
    expect(await alice.errorCode(SEND, { input: { text: 'x', room: room.id, to: bob.id } })).toBe('BAD_USER_INPUT');
    expect(
      await alice.errorCode('mutation($room: ID, $with: ID) { setTyping(room: $room, with: $with, typing: true) }', {
        room: room.id,
        with: bob.id,
      }),
    ).toBe('BAD_USER_INPUT');
  });

  test('messageAdded(room) delivers live and replays after a cursor; typing reaches the other members', async () => {
    const alice = await user();
    const bob = await user();
    const room = await create(alice, 'Live room', true);
    await join(bob, room.slug);
    const first = await alice.data<{ sendMessage: { id: string } }>(SEND, { input: { text: 'm1', room: room.id } });
    await alice.data(SEND, { input: { text: 'm2', room: room.id } });
    const ws = bob.ws();
    try {
      const replayed = ws.subscribe<{ messageAdded: { text: string; room: { id: string; joined: boolean } } }>(ADDED, {
        room: room.id,
        after: first.sendMessage.id,
      });
      const typing = ws.subscribe<{ typing: { typing: boolean; user: { id: string } } }>(TYPING, { room: room.id });
      await ws.connected();
      await subscriptionsAttached(server, 2);
      await alice.data(SEND, { input: { text: 'm3', room: room.id } });
      const items = await replayed.waitForCount(2);
      expect(items.map((i) => i.messageAdded.text)).toEqual(['m2', 'm3']);
      expect(items[1].messageAdded.room).toEqual({ id: room.id, joined: true });

      await alice.data(SET_TYPING, { room: room.id, typing: true });
      const [t] = await typing.waitForCount(1);
      expect(t.typing).toEqual({ typing: true, user: { id: alice.id } });
    } finally {
      await ws.close();
    }
  });
});

describe('private rooms', () => {
  test('to a third user a private room answers exactly as an unknown room, everywhere', async () => {
    const alice = await user();
    const bob = await user();
    const eve = await user();
    const secret = await create(alice, 'Just us', false);
    await join(bob, secret.slug);
    await bob.data(SEND, { input: { text: 'private words', room: secret.id } });
    const unknownId = 'AAAAAAAAAAAAAAAA';

    const probes: Array<[string, (room: string) => Record<string, unknown>]> = [
      [MESSAGES, (room) => ({ room })],
      [SEND, (room) => ({ input: { text: 'hi', room } })],
      [SET_TYPING, (room) => ({ room, typing: true })],
      [LEAVE, (room) => ({ room })],
    ];
    for (const [query, vars] of probes) {
      const forbidden = await errorOf(eve, query, vars(secret.id));
      const unknown = await errorOf(eve, query, vars(unknownId));
      expect(forbidden).toEqual(unknown);
      expect(forbidden.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    }

    // Subscriptions too: the same error for the private room as for an unknown one.
    const ws = eve.ws();
    try {
      const subErrors: GraphQLFormattedError[][] = [];
      for (const room of [secret.id, unknownId]) {
        for (const q of [ADDED, TYPING]) {
          const sub = ws.subscribe(q, { room });
          await sub.ended();
          subErrors.push(sub.errors as GraphQLFormattedError[]);
        }
      }
      const strip = (errs: GraphQLFormattedError[]) =>
        errs.map((e) => ({ message: e.message, code: e.extensions?.code }));
      expect(strip(subErrors[0])).toEqual(strip(subErrors[2]));
      expect(strip(subErrors[1])).toEqual(strip(subErrors[3]));
      expect(strip(subErrors[0])[0].code).toBe('BAD_USER_INPUT');
    } finally {
      await ws.close();
    }

    // Not listed; the members read it.
    const listed = await eve.data<{ rooms: { edges: Array<{ node: { id: string } }> } }>(ROOMS, { first: 100 });
    expect(listed.rooms.edges.map((e) => e.node.id)).not.toContain(secret.id);
    const read = await alice.data<{ messages: { edges: Array<{ node: { text: string } }> } }>(MESSAGES, {
      room: secret.id,
    });
    expect(read.messages.edges.map((e) => e.node.text)).toEqual(['private words']);

    // The slug is the invite: with it Eve can join, then read.
    expect((await join(eve, secret.slug)).memberCount).toBe(3);
    const eveReads = await eve.data<{ messages: { edges: unknown[] } }>(MESSAGES, { room: secret.id });
    expect(eveReads.messages.edges).toHaveLength(1);
  });

  test('after leaving a private room it is unknown to the former member again', async () => {
    const alice = await user();
    const bob = await user();
    const secret = await create(alice, 'Leaving', false);
    await join(bob, secret.slug);
    expect((await bob.data<{ leaveRoom: boolean }>(LEAVE, { room: secret.id })).leaveRoom).toBe(true);
    expect(await bob.errorCode(MESSAGES, { room: secret.id })).toBe('BAD_USER_INPUT');
    expect((await roomBySlug(alice, secret.slug))?.memberCount).toBe(1);
  });
});

describe('membership counts and online members', () => {
  test('memberCount stays exact under concurrent joins, repeated joins and leaves', async () => {
    const owner = await user();
    const room = await create(owner, 'Crowd', true);
    const people = await Promise.all(Array.from({ length: 12 }, () => user()));
    // Everyone joins at once, some twice.
    await Promise.all([...people, ...people.slice(0, 4)].map((p) => join(p, room.slug)));
    expect((await roomBySlug(owner, room.slug))?.memberCount).toBe(13);
    const leaves = await Promise.all(
      [...people.slice(0, 5), ...people.slice(0, 2)].map((p) =>
        p.data<{ leaveRoom: boolean }>(LEAVE, { room: room.id }),
      ),
    );
    // A second leave of the same member reports false and does not count twice.
    expect(leaves.filter((l) => l.leaveRoom)).toHaveLength(5);
    expect((await roomBySlug(owner, room.slug))?.memberCount).toBe(8);
  });

  test('Room.online counts members with an open connection, and they can be listed a page at a time', async () => {
    const owner = await user();
    const room = await create(owner, 'Who is here', true);
    const members = await Promise.all(Array.from({ length: 3 }, () => user()));
    for (const m of members) await join(m, room.slug);
    const outsider = await user();
    const sockets = [...members, outsider].map((m) => m.ws());
    try {
      await Promise.all(sockets.map((s) => s.connected()));
      type Online = {
        room: {
          online: number;
          onlineMembers: {
            edges: Array<{ node: { id: string } }>;
            pageInfo: { hasNextPage: boolean; endCursor: string };
          };
        };
      };
      const first = await waitForValue(
        async () => (await owner.data<Online>(ONLINE, { slug: room.slug, first: 2 })).room,
        (r) => r.online === 3,
        { what: 'three members online' },
      );
      expect(first.onlineMembers.edges).toHaveLength(2);
      expect(first.onlineMembers.pageInfo.hasNextPage).toBe(true);
      const rest = (
        await owner.data<Online>(ONLINE, { slug: room.slug, first: 2, after: first.onlineMembers.pageInfo.endCursor })
      ).room.onlineMembers;
      expect(rest.pageInfo.hasNextPage).toBe(false);
      const listed = [...first.onlineMembers.edges, ...rest.edges].map((e) => e.node.id).sort();
      expect(listed).toEqual(members.map((m) => m.id).sort());
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
    }
  });
});

describe('limits', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startServer({ env: { ROOM_MAX_MEMBERS: '4', ROOMS_PER_USER: '3', ROOMS_CREATED_PER_DAY: '2' } });
  });
  afterAll(async () => {
    await limited?.close();
  });

  test('a full room refuses joins with FORBIDDEN, exactly at the limit under concurrency', async () => {
    const owner = await user(limited);
    const room = await create(owner, 'Small', true);
    const people = await Promise.all(Array.from({ length: 8 }, () => user(limited)));
    const results = await Promise.all(people.map((p) => p.gql(JOIN, { slug: room.slug })));
    expect(results.filter((r) => !r.errors)).toHaveLength(3);
    for (const r of results.filter((x) => x.errors)) expect(r.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect((await roomBySlug(owner, room.slug))?.memberCount).toBe(4);
  });

  test('two instances on one database fill a room exactly to its limit', async () => {
    const other = await startServer({
      dbName: limited.dbName,
      env: { ROOM_MAX_MEMBERS: '4', ROOMS_PER_USER: '3', ROOMS_CREATED_PER_DAY: '2' },
    });
    try {
      const owner = await user(limited);
      const room = await create(owner, 'Split', true);
      const people = await Promise.all(Array.from({ length: 10 }, (_, i) => user(i % 2 ? other : limited)));
      const results = await Promise.all(people.map((p) => p.gql(JOIN, { slug: room.slug })));
      expect(results.filter((r) => !r.errors)).toHaveLength(3);
      expect((await roomBySlug(owner, room.slug))?.memberCount).toBe(4);
      const viaOther = new TestClient(other);
      expect((await roomBySlug(viaOther, room.slug))?.memberCount).toBe(4);
    } finally {
      await other.close();
    }
  });

  test('rooms per user and rooms created per day', async () => {
    const alice = await user(limited);
    await create(alice, 'One', true);
    await create(alice, 'Two', false);
    // The third creation of the day is refused with a retry hint.
    const third = await alice.gql(CREATE, { input: { title: 'Three', public: true } });
    expect(third.errors?.[0].extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(third.errors?.[0].extensions?.retryAfterMs).toBeGreaterThan(0);

    const bob = await user(limited);
    const rooms = [await create(bob, 'B1', true), await create(bob, 'B2', true)];
    const carol = await user(limited);
    const carolsRoom = await create(carol, 'C1', true);
    await join(alice, carolsRoom.slug); // Alice: 3 rooms now
    expect(await alice.errorCode(JOIN, { slug: rooms[0].slug })).toBe('FORBIDDEN');
    await alice.data(LEAVE, { room: carolsRoom.id });
    expect((await join(alice, rooms[0].slug)).joined).toBe(true);
  });
});
