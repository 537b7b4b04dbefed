/**
 * Message lifecycle through the real API: edit, delete (tombstones), reactions, replies.
 */
import { randomUUID } from 'node:crypto';
import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { startServer, type TestServer } from '../helpers/server';
import { nextMillisecond } from '../helpers/wait';

const FIELDS = 'id text cursor editedAt deletedAt replyTo { id text deletedAt } reactions { emoji count mine }';
const SEND = `mutation($text: String!, $to: ID, $replyTo: ID) { sendMessage(input: { text: $text, to: $to, replyTo: $replyTo }) { ${FIELDS} } }`;
const EDIT = `mutation($id: ID!, $text: String!) { editMessage(id: $id, text: $text) { ${FIELDS} } }`;
const DELETE = `mutation($id: ID!) { deleteMessage(id: $id) { ${FIELDS} } }`;
const REACT = `mutation($id: ID!, $emoji: String!, $on: Boolean!) { react(id: $id, emoji: $emoji, on: $on) { ${FIELDS} } }`;
const PAGE = `query($with: ID) { messages(with: $with, last: 100) { edges { cursor node { ${FIELDS} } } } }`;

interface Msg {
  id: string;
  text: string;
  cursor: string;
  editedAt: string | null;
  deletedAt: string | null;
  replyTo: { id: string; text: string; deletedAt: string | null } | null;
  reactions: Array<{ emoji: string; count: number; mine: boolean }>;
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let server: TestServer;
let db: Awaited<ReturnType<typeof openDb>>;
beforeAll(async () => {
  server = await startServer();
  db = await openDb(server.mongodbUri);
});
afterAll(async () => {
  await db.close();
  await server.close();
});

async function user(s: TestServer = server) {
  const c = new TestClient(s);
  const me = await c.me();
  return Object.assign(c, { id: me.id });
}
const send = async (c: TestClient, text: string, extra: Record<string, unknown> = {}) =>
  (await c.data<{ sendMessage: Msg }>(SEND, { text, ...extra })).sendMessage;
const page = async (c: TestClient, withId?: string) =>
  (await c.data<{ messages: { edges: Array<{ cursor: string; node: Msg }> } }>(PAGE, { with: withId })).messages.edges;

describe('editMessage', () => {
  test('the sender edits within the window: new text, editedAt set, same id, cursor and place', async () => {
    const a = await user();
    const b = await user();
    const first = await send(a, 'helo', { to: b.id });
    const second = await send(a, 'second', { to: b.id });
    const edited = (await a.data<{ editMessage: Msg }>(EDIT, { id: first.id, text: '  hello  ' })).editMessage;
    expect(edited).toMatchObject({ id: first.id, cursor: first.cursor, text: 'hello' });
    expect(Date.parse(edited.editedAt!)).toBeGreaterThan(0);
    const edges = await page(b, a.id);
    expect(edges.map((e) => [e.node.id, e.node.text])).toEqual([
      [first.id, 'hello'],
      [second.id, 'second'],
    ]);
    expect(edges[0].node.editedAt).toBe(edited.editedAt);
    expect(edges[1].node.editedAt).toBeNull();
  });

  test("someone else's message cannot be edited (FORBIDDEN), nor with empty or too long text (BAD_USER_INPUT)", async () => {
    const a = await user();
    const b = await user();
    const m = await send(a, 'mine');
    expect(await b.errorCode(EDIT, { id: m.id, text: 'hijack' })).toBe('FORBIDDEN');
    expect(await a.errorCode(EDIT, { id: m.id, text: '   ' })).toBe('BAD_USER_INPUT');
    expect(await a.errorCode(EDIT, { id: m.id, text: 'x'.repeat(2001) })).toBe('BAD_USER_INPUT');
    expect(await a.errorCode(EDIT, { id: 'lobby:nope', text: 'x' })).toBe('BAD_USER_INPUT');
    const edges = await page(a);
    expect(edges.find((e) => e.node.id === m.id)?.node.text).toBe('mine');
  });

  test('a direct message of two other users is an unknown message to a third (nothing to probe)', async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const m = await send(a, 'private', { to: b.id });
    expect(await c.errorCode(EDIT, { id: m.id, text: 'x' })).toBe('BAD_USER_INPUT');
    expect(await c.errorCode(DELETE, { id: m.id })).toBe('BAD_USER_INPUT');
    expect(await c.errorCode(REACT, { id: m.id, emoji: '👍', on: true })).toBe('BAD_USER_INPUT');
  });

  test('after EDIT_WINDOW_SECONDS the sender can no longer edit (FORBIDDEN)', async () => {
    const strict = await startServer({ env: { EDIT_WINDOW_SECONDS: '0' } });
    try {
      const a = await user(strict);
      const m = await send(a, 'too late');
      await nextMillisecond();
      expect(await a.errorCode(EDIT, { id: m.id, text: 'fixed' })).toBe('FORBIDDEN');
    } finally {
      await strict.close();
    }
  });
});

describe('deleteMessage', () => {
  test('leaves a tombstone in place and erases the text in the database', async () => {
    const a = await user();
    const b = await user();
    const before = await send(a, 'before', { to: b.id });
    const secret = await send(a, 'secret words', { to: b.id });
    await b.data(REACT, { id: secret.id, emoji: '🎉', on: true });
    const reply = await send(b, 'answer', { to: a.id, replyTo: secret.id });
    expect(await b.errorCode(DELETE, { id: secret.id })).toBe('FORBIDDEN');

    const gone = (await a.data<{ deleteMessage: Msg }>(DELETE, { id: secret.id })).deleteMessage;
    expect(gone).toMatchObject({ id: secret.id, cursor: secret.cursor, text: '', reactions: [], replyTo: null });
    expect(Date.parse(gone.deletedAt!)).toBeGreaterThan(0);

    const edges = await page(b, a.id);
    expect(edges.map((e) => e.node.id)).toEqual([before.id, secret.id, reply.id]);
    expect(edges[1].node).toMatchObject({ text: '', reactions: [] });
    // The reply now quotes the tombstone.
    expect(edges[2].node.replyTo).toMatchObject({ id: secret.id, text: '' });
    expect(edges[2].node.replyTo!.deletedAt).not.toBeNull();

    const stored = await db.db.collection('messages').findOne({ _id: secret.id as never });
    expect(stored?.text).toBe('');
    expect(JSON.stringify(stored)).not.toContain('secret words');
    expect(await db.db.collection('reactions').countDocuments({ message: secret.id })).toBe(0);
    // Deleting again changes nothing; editing a tombstone is refused.
    expect((await a.data<{ deleteMessage: Msg }>(DELETE, { id: secret.id })).deleteMessage.deletedAt).toBe(
      gone.deletedAt,
    );
    expect(await a.errorCode(EDIT, { id: secret.id, text: 'back' })).toBe('FORBIDDEN');
  });
});

describe('react', () => {
  test('counts per emoji with mine per viewer; on/off idempotent', async () => {
    const a = await user();
    const b = await user();
    const m = await send(a, 'react to me');
    await a.data(REACT, { id: m.id, emoji: '👍', on: true });
    await a.data(REACT, { id: m.id, emoji: '👍', on: true }); // repeat: no-op
    const r = (await b.data<{ react: Msg }>(REACT, { id: m.id, emoji: '👍', on: true })).react;
    expect(r.reactions).toEqual([{ emoji: '👍', count: 2, mine: true }]);
    await b.data(REACT, { id: m.id, emoji: '👨‍👩‍👧', on: true }); // a ZWJ sequence is one emoji
    await b.data(REACT, { id: m.id, emoji: '👋🏽', on: true }); // so is a skin-tone modifier

    const seenByA = (await page(a)).find((e) => e.node.id === m.id)!.node.reactions;
    expect(seenByA).toEqual([
      { emoji: '👍', count: 2, mine: true },
      { emoji: '👨‍👩‍👧', count: 1, mine: false },
      { emoji: '👋🏽', count: 1, mine: false },
    ]);
    await a.data(REACT, { id: m.id, emoji: '👍', on: false });
    await a.data(REACT, { id: m.id, emoji: '👍', on: false }); // repeat: no-op
    const seenByB = (await page(b)).find((e) => e.node.id === m.id)!.node.reactions;
    expect(seenByB[0]).toEqual({ emoji: '👍', count: 1, mine: true });
    expect(await db.db.collection('reactions').countDocuments({ message: m.id })).toBe(3);
  });

  test('anything but one emoji is BAD_USER_INPUT', async () => {
    const a = await user();
    const m = await send(a, 'x');
    for (const emoji of ['', 'a', '👍👍', '👍 ', ':)', '1', '#', '👍a', 'x'.repeat(100)]) {
      expect([emoji, await a.errorCode(REACT, { id: m.id, emoji, on: true })]).toEqual([emoji, 'BAD_USER_INPUT']);
    }
  });

  test('at most 20 distinct emoji per message', async () => {
    const a = await user();
    const m = await send(a, 'popular');
    const emoji = [...'😀😃😄😁😆😅😂🤣😊😇🙂🙃😉😌😍🥰😘😗😙😚'];
    expect(emoji).toHaveLength(20);
    for (const e of emoji) await a.data(REACT, { id: m.id, emoji: e, on: true });
    expect(await a.errorCode(REACT, { id: m.id, emoji: '🤖', on: true })).toBe('BAD_USER_INPUT');
    // An emoji already there can still be added by someone else.
    const b = await user();
    const r = (await b.data<{ react: Msg }>(REACT, { id: m.id, emoji: '😀', on: true })).react;
    expect(r.reactions).toHaveLength(20);
    expect(r.reactions[0]).toEqual({ emoji: '😀', count: 2, mine: true });
  });

  test('100 users reacting at once on two instances end with the exact count', async () => {
    // Two instances as deployed: one database and one Redis (without it each instance's
    // cache of recent messages would never hear of the other's changes).
    const env = { REDIS_URL, REDIS_PREFIX: `anonymo-test-react-${randomUUID()}:` };
    const one = await startServer({ dbName: server.dbName, env });
    const other = await startServer({ dbName: server.dbName, env });
    try {
      const a = await user(one);
      const m = await send(a, 'everyone react');
      const users = await Promise.all(Array.from({ length: 100 }, (_, i) => user(i % 2 ? other : one)));
      await Promise.all(users.map((u) => u.data(REACT, { id: m.id, emoji: '🔥', on: true })));
      const seen = (await page(a)).find((e) => e.node.id === m.id)!.node.reactions;
      expect(seen).toEqual([{ emoji: '🔥', count: 100, mine: false }]);
      // Half take it back, at once, again on both instances.
      await Promise.all(users.slice(0, 50).map((u) => u.data(REACT, { id: m.id, emoji: '🔥', on: false })));
      const after = (await page(a)).find((e) => e.node.id === m.id)!.node.reactions;
      expect(after).toEqual([{ emoji: '🔥', count: 50, mine: false }]);
    } finally {
      await Promise.all([one.close(), other.close()]);
    }
  });
});

describe('replies', () => {
  test('replyTo links a message of the same conversation, and resolves to the original', async () => {
    const a = await user();
    const b = await user();
    const original = await send(a, 'question?', { to: b.id });
    const reply = await send(b, 'answer!', { to: a.id, replyTo: original.id });
    expect(reply.replyTo).toEqual({ id: original.id, text: 'question?', deletedAt: null });
    const edges = await page(a, b.id);
    expect(edges[1].node.replyTo?.id).toBe(original.id);
  });

  test('a reply to another conversation, an unknown or malformed id is BAD_USER_INPUT and stores nothing', async () => {
    const a = await user();
    const b = await user();
    const lobbyMessage = await send(a, 'in the lobby');
    const missing = lobbyMessage.id.replace(/\d+$/, (d) => String(Number(d) + 1000000).padStart(d.length, '0'));
    for (const replyTo of [lobbyMessage.id, missing.replace('lobby', 'lobbyx'), 'nonsense']) {
      expect(await a.errorCode(SEND, { text: 'x', to: b.id, replyTo })).toBe('BAD_USER_INPUT');
    }
    expect(await a.errorCode(SEND, { text: 'x', replyTo: missing })).toBe('BAD_USER_INPUT');
    expect(await page(a, b.id)).toEqual([]);
  });
});
