/**
 * Reports, moderators, bans and shadow bans through the real API. Clients come from
 * addresses of their own (X-Forwarded-For through TRUST_PROXY=loopback), so bans by network
 * can be told apart.
 */
import { randomBytes } from 'node:crypto';
import { TestClient } from '../helpers/client';
import { freshDbName } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitForValue } from '../helpers/wait';

const TOKEN = 'mod-token-0123456789abcdef';
const ENV = { MODERATOR_TOKEN: `alice=${TOKEN},bob=other-token-0123456789`, TRUST_PROXY: 'loopback' };
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const SEND = 'mutation($text: String!, $to: ID) { sendMessage(input: { text: $text, to: $to }) { id text } }';
const HISTORY = 'query($with: ID) { messages(with: $with, last: 50) { edges { cursor node { id text } } } }';
const ADDED = 'subscription($after: String) { messageAdded(after: $after) { id text sender { id } } }';
const REPORT = 'mutation($id: ID!, $reason: ReportReason!) { reportMessage(id: $id, reason: $reason) }';
const REPORTS = `query($first: Int, $after: String) { reports(first: $first, after: $after) {
  edges { cursor node { id reasons reporters createdAt message { id text sender { id } } } }
  pageInfo { hasNextPage endCursor } } }`;
const CLEAR = 'mutation($id: ID!) { clearReport(id: $id) }';
const DELETE = 'mutation($id: ID!) { deleteMessage(id: $id) { id text } }';
const BAN = 'mutation($id: ID!, $hours: Int!, $shadow: Boolean) { banUser(id: $id, hours: $hours, shadow: $shadow) }';
const UPDATED = 'subscription($after: String) { messageUpdated(after: $after) { id text hidden updateCursor } }';
const UPDATES_CURSOR = '{ messageUpdatesCursor }';
const CONVERSATIONS = '{ conversations { with { id } lastMessage { id text } } }';
const LOG = '{ moderationLog(first: 10) { edges { node { by action target details at } } } }';

let net = 0;
/** A browser on an address of its own (or the given one). */
const user = (server: TestServer, ip = `198.51.100.${++net}`) =>
  new TestClient(server, { headers: { 'x-forwarded-for': ip } });
const moderator = (server: TestServer, token = TOKEN) =>
  new TestClient(server, { headers: { authorization: `Bearer ${token}` } });
const texts = (r: { messages: { edges: Array<{ node: { text: string } }> } }) =>
  r.messages.edges.map((e) => e.node.text);
const send = async (c: TestClient, text: string, to?: string): Promise<string> =>
  (await c.data<{ sendMessage: { id: string } }>(SEND, { text, to })).sendMessage.id;

describe('with MODERATOR_TOKEN', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: ENV });
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(() => noSubscriptionsLeft(server));

  test('moderator operations need a configured token, over HTTP (Bearer) and WebSocket (connection_init)', async () => {
    const nobody = user(server);
    expect(await nobody.errorCode(REPORTS)).toBe('FORBIDDEN');
    expect(await moderator(server, 'wrong-token-0123456789abc').errorCode(REPORTS)).toBe('FORBIDDEN');
    expect(await moderator(server, TOKEN.slice(0, -1)).errorCode(REPORTS)).toBe('FORBIDDEN');
    expect((await nobody.data('{ isModerator }')).isModerator).toBe(false);
    expect((await moderator(server).data('{ isModerator }')).isModerator).toBe(true);
    expect((await moderator(server).data(REPORTS)).reports.edges).toBeInstanceOf(Array);

    const plain = nobody.ws();
    const mod = nobody.ws({ connectionParams: { moderatorToken: TOKEN } });
    try {
      const refused = await plain.query(REPORTS);
      expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const allowed = await mod.query<{ isModerator: boolean }>('{ isModerator }');
      expect(allowed.data?.isModerator).toBe(true);
    } finally {
      await Promise.all([plain.close(), mod.close()]);
    }
  });

  test('three reports hide a message from everyone but its sender, in history and replay; the queue aggregates them', async () => {
    const [sender, r1, r2, r3, reader] = [1, 2, 3, 4, 5].map(() => user(server));
    const s = await sender.me();
    await Promise.all([r1, r2, r3, reader].map((c) => c.me()));
    const start = await send(reader, 'before the spam');
    const id = await send(sender, 'buy cheap followers');
    await send(r1, 'an innocent message');

    expect(await r1.data(REPORT, { id, reason: 'SPAM' })).toEqual({ reportMessage: true });
    expect(await r1.errorCode(REPORT, { id, reason: 'HATE' })).toBe('BAD_USER_INPUT');
    expect(await sender.errorCode(REPORT, { id, reason: 'SPAM' })).toBe('BAD_USER_INPUT');
    expect(await r1.errorCode(REPORT, { id: 'lobby:nonsense', reason: 'SPAM' })).toBe('BAD_USER_INPUT');
    await r2.data(REPORT, { id, reason: 'SPAM' });
    expect(texts(await reader.data(HISTORY))).toContain('buy cheap followers');
    await r3.data(REPORT, { id, reason: 'HARASSMENT' });

    expect(texts(await reader.data(HISTORY))).not.toContain('buy cheap followers');
    expect(texts(await reader.data(HISTORY))).toContain('an innocent message');
    expect(texts(await sender.data(HISTORY))).toContain('buy cheap followers');
    // Hidden messages can no longer be reported by others (they cannot see them).
    expect(await reader.errorCode(REPORT, { id, reason: 'SPAM' })).toBe('BAD_USER_INPUT');

    // A replay from before the message skips it for the reader.
    const ws = reader.ws();
    try {
      const replay = ws.subscribe<{ messageAdded: { text: string } }>(ADDED, { after: start });
      await replay.waitFor((items) => items.some((i) => i.messageAdded.text === 'an innocent message'));
      expect(replay.items.map((i) => i.messageAdded.text)).not.toContain('buy cheap followers');
    } finally {
      await ws.close();
    }

    const mod = moderator(server);
    const queue = (await mod.data(REPORTS)).reports.edges;
    const mine = queue.find((e: { node: { id: string } }) => e.node.id === id);
    expect(mine.node).toMatchObject({
      reasons: ['SPAM', 'HARASSMENT'],
      reporters: 3,
      message: { id, text: 'buy cheap followers', sender: { id: s.id } },
    });

    expect(await mod.data(CLEAR, { id })).toEqual({ clearReport: true });
    expect(texts(await reader.data(HISTORY))).toContain('buy cheap followers');
    const after = (await mod.data(REPORTS)).reports.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(after).not.toContain(id);
  });

  test('three reports hide a message live for a fourth user, not for its sender; clearing shows it again live; replays carry both', async () => {
    const [sender, r1, r2, r3, fourth] = [1, 2, 3, 4, 5].map(() => user(server));
    await Promise.all([sender, r1, r2, r3, fourth].map((c) => c.me()));
    const cursor = (await fourth.data<{ messageUpdatesCursor: string }>(UPDATES_CURSOR)).messageUpdatesCursor;
    type Updated = { messageUpdated: { id: string; text: string; hidden: boolean; updateCursor: string } };
    type Added = { messageAdded: { id: string; text: string } };
    const [fourthWs, senderWs] = [fourth.ws(), sender.ws()];
    try {
      const fourthAdded = fourthWs.subscribe<Added>(ADDED);
      const fourthUpdated = fourthWs.subscribe<Updated>(UPDATED);
      const senderUpdated = senderWs.subscribe<Updated>(UPDATED);
      await subscriptionsAttached(server, 3);
      const id = await send(sender, 'reported live');
      await fourthAdded.waitFor((items) => items.some((i) => i.messageAdded.id === id));

      for (const r of [r1, r2]) await r.data(REPORT, { id, reason: 'SPAM' });
      await r3.data(REPORT, { id, reason: 'SPAM' });
      const hidden = (u: Updated) => u.messageUpdated.id === id && u.messageUpdated.hidden;
      const seen = await fourthUpdated.waitFor((items) => items.some(hidden));
      // Two reports hid nothing: the first update the fourth user gets is the hide, without the text.
      expect(seen.map((u) => u.messageUpdated)).toEqual([expect.objectContaining({ id, text: '', hidden: true })]);
      const own = await senderUpdated.waitFor((items) => items.some(hidden));
      expect(own.find(hidden)?.messageUpdated.text).toBe('reported live');
      expect(texts(await sender.data(HISTORY))).toContain('reported live');
      expect(texts(await fourth.data(HISTORY))).not.toContain('reported live');

      // A client that was away replays the hide from the update log.
      const replayWs = fourth.ws();
      try {
        const replay = replayWs.subscribe<Updated>(UPDATED, { after: cursor });
        const replayed = await replay.waitFor((items) => items.some(hidden));
        expect(replayed.find(hidden)?.messageUpdated.text).toBe('');
      } finally {
        await replayWs.close();
      }

      expect(await moderator(server).data(CLEAR, { id })).toEqual({ clearReport: true });
      const shown = (u: Updated) => u.messageUpdated.id === id && !u.messageUpdated.hidden;
      const back = await fourthUpdated.waitFor((items) => items.some(shown));
      expect(back.find(shown)?.messageUpdated.text).toBe('reported live');
      expect(texts(await fourth.data(HISTORY))).toContain('reported live');
    } finally {
      await Promise.all([fourthWs.close(), senderWs.close()]);
    }
  });

  test('reports only reach messages the reporter can see; the queue is newest first and paginates', async () => {
    const [a, b, c] = [user(server), user(server), user(server)];
    const [ua, ub] = [await a.me(), await b.me()];
    await c.me();
    const dm = await send(a, 'private words', ub.id);
    expect(await c.errorCode(REPORT, { id: dm, reason: 'OTHER' })).toBe('BAD_USER_INPUT');
    await b.data(REPORT, { id: dm, reason: 'OTHER' });
    const first = await send(a, 'first reported');
    const second = await send(a, 'second reported');
    await c.data(REPORT, { id: first, reason: 'VIOLENCE' });
    await c.data(REPORT, { id: second, reason: 'SEXUAL' });
    // A reporter who blocks the sender no longer sees their messages, so cannot report them.
    await b.data('mutation($id: ID!) { blockUser(id: $id) }', { id: ua.id });
    expect(await b.errorCode(REPORT, { id: first, reason: 'SPAM' })).toBe('BAD_USER_INPUT');

    const mod = moderator(server);
    const page1 = (await mod.data(REPORTS, { first: 2 })).reports;
    expect(page1.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([second, first]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (await mod.data(REPORTS, { first: 1, after: page1.pageInfo.endCursor })).reports;
    expect(page2.edges[0].node).toMatchObject({ id: dm, reasons: ['OTHER'], reporters: 1 });
    expect(await mod.errorCode(REPORTS, { first: 51 })).toBe('BAD_USER_INPUT');
  });

  test('a room’s messages are reported by whoever may read the room, and three reports hide one from the room but its sender', async () => {
    const CREATE_ROOM =
      'mutation($public: Boolean!) { createRoom(input: { title: "Room", public: $public }) { id slug } }';
    const JOIN_ROOM = 'mutation($slug: String!) { joinRoom(slug: $slug) { id } }';
    const ROOM_SEND =
      'mutation($text: String!, $room: ID!) { sendMessage(input: { text: $text, room: $room }) { id } }';
    const ROOM_HISTORY = 'query($room: ID) { messages(room: $room, last: 50) { edges { node { text } } } }';
    const [owner, m1, m2, m3, outsider] = [1, 2, 3, 4, 5].map(() => user(server));
    await Promise.all([owner, m1, m2, m3, outsider].map((c) => c.me()));
    const privateRoom = (await owner.data(CREATE_ROOM, { public: false })).createRoom;
    for (const m of [m1, m2, m3]) await m.data(JOIN_ROOM, { slug: privateRoom.slug });
    const roomSend = async (c: TestClient, text: string, room: string): Promise<string> =>
      (await c.data<{ sendMessage: { id: string } }>(ROOM_SEND, { text, room })).sendMessage.id;
    const spam = await roomSend(owner, 'spam in a private room', privateRoom.id);
    await roomSend(m1, 'a member’s message', privateRoom.id);
    // Someone outside a private room cannot see its messages, so cannot report them: the
    // same answer as for a message that does not exist.
    expect(await outsider.errorCode(REPORT, { id: spam, reason: 'SPAM' })).toBe('BAD_USER_INPUT');
    expect(await m1.errorCode(REPORT, { id: `room:${privateRoom.id}:000000000099`, reason: 'SPAM' })).toBe(
      'BAD_USER_INPUT',
    );
    for (const m of [m1, m2, m3])
      expect(await m.data(REPORT, { id: spam, reason: 'SPAM' })).toEqual({ reportMessage: true });
    expect(texts(await m1.data(ROOM_HISTORY, { room: privateRoom.id }))).toEqual(['a member’s message']);
    expect(texts(await owner.data(ROOM_HISTORY, { room: privateRoom.id }))).toEqual([
      'spam in a private room',
      'a member’s message',
    ]);
    const queue = (await moderator(server).data(REPORTS, { first: 5 })).reports;
    expect(queue.edges[0].node).toMatchObject({ id: spam, reasons: ['SPAM'], reporters: 3 });
    // A public room's messages are seen, and reported, by anyone, member or not.
    const publicRoom = (await owner.data(CREATE_ROOM, { public: true })).createRoom;
    const open = await roomSend(owner, 'in a public room', publicRoom.id);
    expect(await outsider.data(REPORT, { id: open, reason: 'OTHER' })).toEqual({ reportMessage: true });
  });

  test('a moderator deletes any message: a tombstone with its text erased, logged under the token’s label', async () => {
    const [a, b] = [user(server), user(server)];
    await b.me();
    const id = await send(a, 'something awful');
    const mod = moderator(server);
    expect(await b.errorCode(DELETE, { id })).toBe('FORBIDDEN'); // neither its sender nor a moderator
    expect((await mod.data(DELETE, { id })).deleteMessage).toEqual({ id, text: '' });
    const seen = (await b.data(HISTORY)).messages.edges.find((e: { node: { id: string } }) => e.node.id === id);
    expect(seen.node.text).toBe('');
    const log = (await mod.data(LOG)).moderationLog.edges.map((e: { node: object }) => e.node);
    expect(log[0]).toMatchObject({ by: 'alice', action: 'deleteMessage', target: id });
    expect(await moderator(server, 'other-token-0123456789').data(LOG)).toBeTruthy();
    expect(await a.errorCode(LOG)).toBe('FORBIDDEN');
  });

  test('a ban refuses the user’s sends and follows new identities from the same network, not older ones', async () => {
    const ip = '203.0.113.77';
    const troll = user(server, ip);
    const neighbour = user(server, ip); // on the same address before the ban
    const stranger = user(server);
    const t = await troll.me();
    await Promise.all([neighbour.me(), stranger.me()]);
    await send(troll, 'first troll message');
    const mod = moderator(server);
    expect(await mod.errorCode(BAN, { id: t.id, hours: 0 })).toBe('BAD_USER_INPUT');
    expect(await troll.errorCode(BAN, { id: t.id, hours: 1 })).toBe('FORBIDDEN');
    expect(await mod.data(BAN, { id: t.id, hours: 24 })).toEqual({ banUser: true });

    expect(await troll.errorCode(SEND, { text: 'again' })).toBe('FORBIDDEN');
    const reborn = user(server, ip);
    await reborn.me();
    expect(await reborn.errorCode(SEND, { text: 'new me' })).toBe('FORBIDDEN');
    await send(neighbour, 'I was here before');
    await send(stranger, 'I am elsewhere');
    const log = (await mod.data(LOG)).moderationLog.edges.map((e: { node: object }) => e.node);
    expect(log[0]).toMatchObject({ by: 'alice', action: 'ban', target: t.id });
    expect(JSON.parse((log[0] as { details: string }).details)).toMatchObject({ hours: 24, network: true });
    // What is stored about the network is a keyed hash, never the address.
    const stored = JSON.stringify(await server.services.db.connection.collection('bans').find().toArray());
    expect(stored).not.toContain(ip);
  });
});

test('without MODERATOR_TOKEN moderation is off: its operations are FORBIDDEN even with a token', async () => {
  const server = await startServer();
  try {
    const c = moderator(server);
    expect(await c.errorCode(REPORTS)).toBe('FORBIDDEN');
    expect(await c.errorCode(BAN, { id: (await c.me()).id, hours: 1 })).toBe('FORBIDDEN');
    expect((await c.data('{ isModerator }')).isModerator).toBe(false);
  } finally {
    await server.close();
  }
});

test('a shadow-banned user’s messages reach their own tabs on both instances and nobody else', async () => {
  const dbName = freshDbName('shadow');
  const env = { ...ENV, REDIS_URL, REDIS_PREFIX: `anonymo-test-${randomBytes(4).toString('hex')}:` };
  const a = await startServer({ dbName, env });
  const b = await startServer({ dbName, env });
  try {
    const troll = user(a);
    const other = user(b);
    const t = await troll.me();
    await other.me();
    const trollOnB = new TestClient(b, troll.options);
    trollOnB.cookie = troll.cookie;
    expect(await moderator(a).data(BAN, { id: t.id, hours: 1, shadow: true })).toEqual({ banUser: true });

    const [tabA, tabB, otherWs] = [troll.ws(), trollOnB.ws(), other.ws()];
    try {
      const seenA = tabA.subscribe<{ messageAdded: { text: string } }>(ADDED);
      const seenB = tabB.subscribe<{ messageAdded: { text: string } }>(ADDED);
      const seenOther = otherWs.subscribe<{ messageAdded: { text: string } }>(ADDED);
      await Promise.all([subscriptionsAttached(a, 1), subscriptionsAttached(b, 2)]);

      const id = await send(troll, 'you cannot stop me');
      expect(id).toBeTruthy();
      const has = (t: string) => (items: Array<{ messageAdded: { text: string } }>) =>
        items.some((i) => i.messageAdded.text === t);
      await seenA.waitFor(has('you cannot stop me'));
      await seenB.waitFor(has('you cannot stop me'));
      const before = await seenOther.before(
        () => send(other, 'marker'),
        (i) => i.messageAdded.text === 'marker',
      );
      expect(before).toEqual([]);
      expect(texts(await other.data(HISTORY))).toEqual(['marker']);
      expect(texts(await trollOnB.data(HISTORY))).toEqual(['you cannot stop me', 'marker']);
    } finally {
      await Promise.all([tabA.close(), tabB.close(), otherWs.close()]);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a message hidden by reports through one instance is hidden in the other instance’s history too', async () => {
  const dbName = freshDbName('hide2');
  const env = { ...ENV, REDIS_URL, REDIS_PREFIX: `anonymo-test-${randomBytes(4).toString('hex')}:` };
  const a = await startServer({ dbName, env });
  const b = await startServer({ dbName, env });
  try {
    const [sender, r1, r2, r3] = [user(a), user(a), user(a), user(a)];
    const reader = user(b);
    await Promise.all([sender, r1, r2, r3, reader].map((c) => c.me()));
    const id = await send(sender, 'spam via instance a');
    // Instance b now holds the newest messages in memory.
    expect(texts(await reader.data(HISTORY))).toContain('spam via instance a');
    for (const r of [r1, r2, r3]) await r.data(REPORT, { id, reason: 'SPAM' });
    await waitForValue(
      async () => texts(await reader.data(HISTORY)),
      (t) => !t.includes('spam via instance a'),
      { what: 'the hide to reach instance b' },
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a conversation’s lastMessage never shows the viewer a message hidden from them: blocked, shadow or hidden by reports', async () => {
  const server = await startServer({ env: { ...ENV, REPORT_HIDE_THRESHOLD: '1' } });
  type Conv = { with: { id: string }; lastMessage: { text: string } | null };
  const lastWith = async (c: TestClient, other: string) =>
    (await c.data<{ conversations: Conv[] }>(CONVERSATIONS)).conversations.find((x) => x.with.id === other)?.lastMessage
      ?.text;
  try {
    const [alice, bob, troll, victim] = [user(server), user(server), user(server), user(server)];
    const [a, b, t, v] = await Promise.all([alice.me(), bob.me(), troll.me(), victim.me()]);

    // Blocked: what Bob sent before Alice blocked him is no longer Alice's to see.
    await send(alice, 'hello bob', b.id);
    await send(bob, 'bob before the block', a.id);
    expect(await lastWith(alice, b.id)).toBe('bob before the block');
    await alice.data('mutation($id: ID!) { blockUser(id: $id) }', { id: b.id });
    expect(await lastWith(alice, b.id)).toBe('hello bob');
    expect(await lastWith(bob, a.id)).toBe('bob before the block');

    // Shadow: the troll’s message to an existing conversation is theirs alone.
    await send(victim, 'hi troll', t.id);
    await moderator(server).data(BAN, { id: t.id, hours: 1, shadow: true });
    await send(troll, 'shadow words', v.id);
    expect(await lastWith(victim, t.id)).toBe('hi troll');
    expect(await lastWith(troll, v.id)).toBe('shadow words');

    // Hidden by reports (threshold 1 here): gone from the reporter’s summary, not the sender’s.
    const id = await send(bob, 'reportable words', v.id);
    expect(await lastWith(victim, b.id)).toBe('reportable words');
    await victim.data(REPORT, { id, reason: 'HARASSMENT' });
    expect(await lastWith(victim, b.id)).toBeUndefined();
    expect(await lastWith(bob, v.id)).toBe('reportable words');
    await send(victim, 'a reply', b.id);
    expect(await lastWith(victim, b.id)).toBe('a reply');
  } finally {
    await server.close();
  }
});

test('a reply never quotes what its readers may not see: a hidden message is quoted redacted, a shadow one not at all', async () => {
  const server = await startServer({ env: { ...ENV, REPORT_HIDE_THRESHOLD: '1' } });
  const REPLY =
    'mutation($text: String!, $replyTo: ID) { sendMessage(input: { text: $text, replyTo: $replyTo }) { id } }';
  const QUOTES = '{ messages(last: 50) { edges { node { text replyTo { id text hidden } } } } }';
  type Page = {
    messages: { edges: Array<{ node: { text: string; replyTo: { text: string; hidden: boolean } | null } }> };
  };
  const quoteIn = async (c: TestClient, reply: string) =>
    (await c.data<Page>(QUOTES)).messages.edges.find((e) => e.node.text === reply)?.node.replyTo;
  try {
    const [alice, bob, carol, troll] = [user(server), user(server), user(server), user(server)];
    const [, , , t] = await Promise.all([alice.me(), bob.me(), carol.me(), troll.me()]);
    const quoted = await send(alice, 'quoted words');
    await bob.data(REPLY, { text: 'my reply', replyTo: quoted });
    expect(await quoteIn(carol, 'my reply')).toMatchObject({ text: 'quoted words', hidden: false });
    await carol.data(REPORT, { id: quoted, reason: 'SPAM' });
    expect(await quoteIn(carol, 'my reply')).toMatchObject({ id: quoted, text: '', hidden: true });
    expect(await quoteIn(bob, 'my reply')).toMatchObject({ text: '', hidden: true });

    await moderator(server).data(BAN, { id: t.id, hours: 1, shadow: true });
    const shadow = await send(troll, 'shadow words');
    // Message ids are guessable: a reply to a shadow message must not reveal it.
    await bob.data(REPLY, { text: 'reply to a guess', replyTo: shadow });
    expect(await quoteIn(carol, 'reply to a guess')).toBeNull();
  } finally {
    await server.close();
  }
});

test('reportMessage is rate limited per user (RATE_LIMIT_REPORT_MESSAGE): the excess is RATE_LIMITED and stores no report; others still report', async () => {
  const server = await startServer({ env: { ...ENV, RATE_LIMIT_REPORT_MESSAGE: '2/1m' } });
  try {
    const [sender, reporter, other] = [user(server), user(server), user(server)];
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await send(sender, `message ${i}`));
    expect(await reporter.data(REPORT, { id: ids[0], reason: 'SPAM' })).toEqual({ reportMessage: true });
    // A report of an unknown message counts too: probing ids costs the same.
    expect(await reporter.errorCode(REPORT, { id: 'lobby:999999999999', reason: 'SPAM' })).not.toBe('RATE_LIMITED');
    const refused = await reporter.gql(REPORT, { id: ids[1], reason: 'SPAM' });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) });
    expect(refused.errors?.[0].extensions?.retryAfterMs as number).toBeGreaterThan(0);
    expect(await other.data(REPORT, { id: ids[1], reason: 'SPAM' })).toEqual({ reportMessage: true });
    // Only the reports let through exist: one of ids[0], one of ids[1] (by the other user).
    type Page = { reports: { edges: Array<{ node: { message: { id: string }; reporters: number } }> } };
    const reports = (await moderator(server).data<Page>(REPORTS, { first: 50 })).reports.edges.map((e) => [
      e.node.message.id,
      e.node.reporters,
    ]);
    expect(reports.sort()).toEqual(
      [
        [ids[0], 1],
        [ids[1], 1],
      ].sort(),
    );
  } finally {
    await server.close();
  }
});
