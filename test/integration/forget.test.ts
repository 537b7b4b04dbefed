/**
 * deleteMyData on two instances (one database, the local Redis): everything the contract
 * lists is erased from the database, the user's WebSockets close with 4001 on both
 * instances, and the next request is a new identity.
 */
import { randomBytes } from 'node:crypto';
import { TestClient } from '../helpers/client';
import { freshDbName, openDb } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_PREFIX = `anonymo-test-${randomBytes(4).toString('hex')}:`;

const SEND = `mutation($text: String!, $to: ID, $replyTo: ID, $clientId: String) { sendMessage(input: { text: $text, to: $to, replyTo: $replyTo, clientId: $clientId }) { id } }`;
const REACT = `mutation($id: ID!, $emoji: String!) { react(id: $id, emoji: $emoji, on: true) { id } }`;
const READ = `mutation($with: ID!, $upTo: ID!) { markRead(with: $with, upTo: $upTo) }`;
const FORGET = `mutation { deleteMyData }`;
const PAGE = `query($with: ID) { messages(with: $with, last: 100) { edges { node { id text deletedAt sender { id username } reactions { emoji count } } } } }`;
const UPDATED = `subscription { messageUpdated { id text deletedAt sender { username } } }`;
const ADDED = `subscription { messageAdded { id } }`;

let a: TestServer;
let b: TestServer;
let db: Awaited<ReturnType<typeof openDb>>;
beforeAll(async () => {
  const dbName = freshDbName('forget');
  const env = { REDIS_URL, REDIS_PREFIX };
  a = await startServer({ dbName, env });
  b = await startServer({ dbName, env });
  db = await openDb(a.mongodbUri);
});
afterAll(async () => {
  await db.close();
  await Promise.all([a?.close(), b?.close()]);
});
afterEach(() => Promise.all([noSubscriptionsLeft(a), noSubscriptionsLeft(b)]));

async function user(server: TestServer) {
  const c = new TestClient(server);
  const { id } = await c.me();
  return Object.assign(c, { id });
}

test('deleteMyData erases what the contract lists, ends the sessions on every instance, and the next request is a new identity', async () => {
  const x = await user(a);
  const y = await user(b);
  // X's data: lobby and direct messages (one a reply), a reaction, a read marker, a conversation.
  const xLobby = (await x.data(SEND, { text: 'x says hi', clientId: 'k-1' })).sendMessage.id as string;
  const yDm = (await y.data(SEND, { text: 'hello x', to: x.id, clientId: 'k-2' })).sendMessage.id as string;
  const xDm = (await x.data(SEND, { text: 'x private words', to: y.id, replyTo: yDm, clientId: 'k-3' })).sendMessage
    .id as string;
  await y.data(REACT, { id: xDm, emoji: '👀' });
  await x.data(REACT, { id: yDm, emoji: '❤️' });
  await x.data(READ, { with: y.id, upTo: yDm });
  expect(await db.db.collection('read_markers').countDocuments({ _id: { $regex: `^${x.id}:` } } as never)).toBe(1);

  // X is connected on both instances; Y watches the lobby's updates.
  const xOnB = Object.assign(new TestClient(b), { cookie: x.cookie });
  const wsA = x.ws();
  const wsB = xOnB.ws();
  const wsY = y.ws();
  try {
    wsA.subscribe(ADDED);
    wsB.subscribe(ADDED);
    const updates = wsY.subscribe<{ messageUpdated: { id: string; text: string; sender: { username: string } } }>(
      UPDATED,
    );
    await Promise.all([subscriptionsAttached(a, 1), subscriptionsAttached(b, 2)]);

    expect((await x.data(FORGET)).deleteMyData).toBe(true);

    // Sessions end everywhere: both of X's sockets are closed with 4001.
    await waitFor(() => [wsA, wsB].every((w) => w.closes.some((c) => c.code === 4001)), { what: '4001 closes' });
    // Y sees X's lobby message turn into a tombstone of nobody.
    const [u] = await updates.waitFor((got) => got.some((g) => g.messageUpdated.id === xLobby), 5000, 'the tombstone');
    expect(u.messageUpdated).toMatchObject({ id: xLobby, text: '', sender: { username: 'Deleted user' } });
  } finally {
    await Promise.all([wsA.close(), wsB.close(), wsY.close()]);
  }

  // The database: no content of X's, no reactions, markers, inbox, sessions or user.
  const messages = db.db.collection('messages');
  expect(await messages.countDocuments({ sender: x.id })).toBe(0);
  for (const id of [xLobby, xDm]) {
    const doc = await messages.findOne({ _id: id as never });
    expect(doc).toMatchObject({ text: '', sender: 'deleted', clientId: null, replyTo: null, reactions: [] });
    expect(doc?.deletedAt).toBeInstanceOf(Date);
  }
  const everything = JSON.stringify(await messages.find({}).toArray());
  expect(everything).not.toContain('x says hi');
  expect(everything).not.toContain('x private words');
  expect(await db.db.collection('reactions').countDocuments({ user: x.id })).toBe(0);
  expect(await db.db.collection('reactions').countDocuments({ message: xDm })).toBe(0);
  expect(await db.db.collection('read_markers').countDocuments({ _id: { $regex: `^${x.id}:` } } as never)).toBe(0);
  expect(await db.db.collection('inbox_entries').countDocuments({ owner: x.id })).toBe(0);
  expect(await db.db.collection('inbox_pairs').countDocuments({ _id: { $regex: `^${x.id}:` } } as never)).toBe(0);
  expect(await db.db.collection('sessions').countDocuments({ userId: x.id })).toBe(0);
  expect(await db.db.collection('users').countDocuments({ username: { $exists: true } })).toBe(1);

  // Y's history keeps the places: X's messages are tombstones, Y's message lost X's reaction.
  // (The direct conversation can no longer be named: X is no user any more.)
  expect(await y.errorCode(PAGE, { with: x.id })).toBe('BAD_USER_INPUT');
  const lobby = (
    await y.data<{ messages: { edges: Array<{ node: { id: string; text: string; sender: { username: string } } }> } }>(
      PAGE,
      {},
    )
  ).messages.edges;
  expect(lobby.find((e) => e.node.id === xLobby)?.node).toMatchObject({
    text: '',
    sender: { username: 'Deleted user' },
  });
  const yDoc = await messages.findOne({ _id: yDm as never });
  expect(yDoc?.reactions).toEqual([]);

  // The next request, on either instance, is a new identity.
  const again = await x.me();
  expect(again.id).not.toBe(x.id);
  expect((await xOnB.me()).id).not.toBe(x.id);
});
