/**
 * messageUpdated: edits, deletions and reaction changes reach the conversation's subscribers
 * on every instance, once and in order, and a client that was away catches up with `after`.
 * Two real instances on one database and the local Redis.
 */
import { randomBytes } from 'node:crypto';
import { TestClient } from '../helpers/client';
import { freshDbName } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_PREFIX = `anonymo-test-${randomBytes(4).toString('hex')}:`;

const SEND = `mutation($text: String!, $to: ID) { sendMessage(input: { text: $text, to: $to }) { id } }`;
const EDIT = `mutation($id: ID!, $text: String!) { editMessage(id: $id, text: $text) { id } }`;
const DELETE = `mutation($id: ID!) { deleteMessage(id: $id) { id } }`;
const REACT = `mutation($id: ID!, $emoji: String!, $on: Boolean!) { react(id: $id, emoji: $emoji, on: $on) { id } }`;
const PAGE = `query($with: ID) { messages(with: $with, last: 10) { edges { node { id text editedAt deletedAt updateCursor reactions { emoji count mine } } } } }`;
const CURSOR = `query($with: ID, $room: ID) { messageUpdatesCursor(with: $with, room: $room) }`;
const UPDATED = `subscription($with: ID, $room: ID, $after: String) {
  messageUpdated(with: $with, room: $room, after: $after) {
    id text editedAt deletedAt updateCursor reactions { emoji count mine }
  }
}`;

interface Update {
  messageUpdated: {
    id: string;
    text: string;
    editedAt: string | null;
    deletedAt: string | null;
    updateCursor: string;
    reactions: Array<{ emoji: string; count: number; mine: boolean }>;
  };
}

let a: TestServer;
let b: TestServer;
beforeAll(async () => {
  const dbName = freshDbName('updates');
  const env = { REDIS_URL, REDIS_PREFIX };
  a = await startServer({ dbName, env });
  b = await startServer({ dbName, env });
});
afterAll(async () => {
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
const send = async (c: TestClient, text: string, to?: string) =>
  (await c.data<{ sendMessage: { id: string } }>(SEND, { text, to })).sendMessage.id;
const summary = (u: Update) => {
  const m = u.messageUpdated;
  return [m.id, m.deletedAt ? '<deleted>' : m.text, m.reactions.map((r) => `${r.emoji}${r.count}`).join('')];
};

test('edits, reactions and deletions reach subscribers on both instances once, in order, rendered per viewer', async () => {
  const alice = await user(a);
  const bob = await user(b);
  const m1 = await send(alice, 'first', bob.id);
  const m2 = await send(alice, 'second', bob.id);
  const wsA = alice.ws();
  const wsB = bob.ws();
  try {
    const subA = wsA.subscribe<Update>(UPDATED, { with: bob.id });
    const subB = wsB.subscribe<Update>(UPDATED, { with: alice.id });
    await Promise.all([subscriptionsAttached(a, 1), subscriptionsAttached(b, 1)]);

    await alice.data(EDIT, { id: m1, text: 'first (edited)' });
    await bob.data(REACT, { id: m1, emoji: '👍', on: true });
    await alice.via(b).data(REACT, { id: m2, emoji: '❤️', on: true });
    await alice.data(DELETE, { id: m2 });
    const marker = await send(alice, 'marker', bob.id);
    await alice.via(b).data(EDIT, { id: marker, text: 'marker!' });

    const expected = [
      [m1, 'first (edited)', ''],
      [m1, 'first (edited)', '👍1'],
      [m2, 'second', '❤️1'],
      [m2, '<deleted>', ''],
      [marker, 'marker!', ''],
    ];
    for (const sub of [subA, subB]) {
      const items = await sub.waitFor((got) => got.some((u) => u.messageUpdated.id === marker), 8000, 'the marker');
      expect(items.map(summary)).toEqual(expected);
      const cursors = items.map((u) => u.messageUpdated.updateCursor);
      expect(new Set(cursors).size).toBe(cursors.length);
    }
    // `mine` is the viewer's: Bob reacted with 👍, Alice did not.
    expect(subB.items[1].messageUpdated.reactions).toEqual([{ emoji: '👍', count: 1, mine: true }]);
    expect(subA.items[1].messageUpdated.reactions).toEqual([{ emoji: '👍', count: 1, mine: false }]);
    expect(subA.items[0].messageUpdated.editedAt).not.toBeNull();
    // History on both instances shows the latest state (their recent-message caches follow the changes).
    for (const reader of [alice, alice.via(b), bob, bob.via(a)]) {
      const page = await reader.data<{ messages: { edges: Array<{ node: Update['messageUpdated'] }> } }>(PAGE, {
        with: reader === alice || reader.cookie === alice.cookie ? bob.id : alice.id,
      });
      expect(page.messages.edges.map((e) => summary({ messageUpdated: e.node }))).toEqual([
        [m1, 'first (edited)', '👍1'],
        [m2, '<deleted>', ''],
        [marker, 'marker!', ''],
      ]);
    }
  } finally {
    await Promise.all([wsA.close(), wsB.close()]);
  }
});

test('after a disconnect, messageUpdated(after) replays each message changed meanwhile once, in its current state, then continues live', async () => {
  const alice = await user(a);
  const bob = await user(b);
  const m1 = await send(alice, 'one');
  const m2 = await send(alice, 'two');
  const m3 = await send(alice, 'three');
  const ws1 = bob.ws();
  let cursor: string;
  try {
    const sub = ws1.subscribe<Update>(UPDATED, {});
    await subscriptionsAttached(b, 1);
    await alice.data(EDIT, { id: m1, text: 'one v2' });
    cursor = (await sub.waitForCount(1))[0].messageUpdated.updateCursor;
  } finally {
    await ws1.close();
  }
  // While Bob is away (changes made on both instances):
  await alice.data(EDIT, { id: m2, text: 'two v2' });
  await bob.via(a).data(REACT, { id: m3, emoji: '🎉', on: true });
  await alice.via(b).data(EDIT, { id: m2, text: 'two v3' });
  await alice.data(DELETE, { id: m1 });

  const ws2 = bob.ws();
  try {
    const sub = ws2.subscribe<Update>(UPDATED, { after: cursor });
    // m2 changed twice: it is replayed once, at its last change, as it is now.
    const replayed = await sub.waitForCount(3);
    expect(replayed.map(summary)).toEqual([
      [m3, 'three', '🎉1'],
      [m2, 'two v3', ''],
      [m1, '<deleted>', ''],
    ]);
    expect(replayed[0].messageUpdated.reactions[0].mine).toBe(true);
    await alice.via(b).data(EDIT, { id: m3, text: 'three v2' });
    const all = await sub.waitForCount(4);
    expect(summary(all[3])).toEqual([m3, 'three v2', '🎉1']);
  } finally {
    await ws2.close();
  }
});

test('messageUpdatesCursor read before loading history lets a client receive every change made since', async () => {
  const alice = await user(a);
  const bob = await user(b);
  const m = await send(alice, 'hello', bob.id);
  const cursor = (await bob.data<{ messageUpdatesCursor: string }>(CURSOR, { with: alice.id })).messageUpdatesCursor;
  await alice.data(EDIT, { id: m, text: 'hello!' });
  const ws = bob.ws();
  try {
    const sub = ws.subscribe<Update>(UPDATED, { with: alice.id, after: cursor });
    expect((await sub.waitForCount(1)).map(summary)).toEqual([[m, 'hello!', '']]);
  } finally {
    await ws.close();
  }
});

test('a bad after, or with and room together, is BAD_USER_INPUT', async () => {
  const alice = await user(a);
  const bob = await user(a);
  const ws = alice.ws();
  try {
    const variables = [
      { after: '%%%' },
      { after: Buffer.from('u99999999').toString('base64url') },
      { with: bob.id, room: 'r1' },
    ];
    for (const v of variables) {
      const sub = ws.subscribe<Update>(UPDATED, v);
      await sub.ended();
      expect([v, JSON.stringify(sub.errors)]).toEqual([v, expect.stringContaining('BAD_USER_INPUT')]);
    }
    expect(await alice.errorCode(CURSOR, { with: bob.id, room: 'r1' })).toBe('BAD_USER_INPUT');
  } finally {
    await ws.close();
  }
});
