/**
 * Disappearing messages and RETENTION_DAYS: expired messages vanish from every read and are
 * removed from the database by the purge job (PURGE_INTERVAL_MS is short here). A message's
 * expiry is moved into the past in the database to stand for time passing, since the shortest
 * TTL the contract allows is 30 s; the servers' recent-message caches still hold the original
 * expiry then, so the reads are checked once the purge has run (which updates every cache).
 * Hiding between expiry and purge is the same check on the cached expiresAt.
 */
import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { randomUUID } from 'node:crypto';
import { sample, scrape, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitForValue } from '../helpers/wait';

const SEND = `mutation($text: String!, $to: ID, $replyTo: ID) {
  sendMessage(input: { text: $text, to: $to, replyTo: $replyTo }) { id cursor expiresAt createdAt }
}`;
const TTL = `mutation($with: ID, $room: ID, $seconds: Int) { setMessageTtl(with: $with, room: $room, seconds: $seconds) }`;
const PAGE = `query($with: ID, $after: String) { messages(with: $with, after: $after, first: 100) { edges { node { id text } } } }`;
const CONVERSATIONS = `{ conversations { with { id } messageTtlSeconds unreadCount lastMessage { id } } }`;
const ADDED = `subscription($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id text } }`;
const REACT = `mutation($id: ID!) { react(id: $id, emoji: "👍", on: true) { id } }`;

let server: TestServer;
let db: Awaited<ReturnType<typeof openDb>>;
beforeAll(async () => {
  server = await startServer({ env: { PURGE_INTERVAL_MS: '200' } });
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
type Sent = { id: string; cursor: string; expiresAt: string | null; createdAt: string };
const send = async (c: TestClient, text: string, to?: string, replyTo?: string) =>
  (await c.data<{ sendMessage: Sent }>(SEND, { text, to, replyTo })).sendMessage;
const texts = async (c: TestClient, withId?: string, after?: string) =>
  (
    await c.data<{ messages: { edges: Array<{ node: { text: string } }> } }>(PAGE, { with: withId, after })
  ).messages.edges.map((e) => e.node.text);

/**
 * Stands for the passing of time: these messages' expiry is now in the past, in the messages
 * and in the purge's log of what will expire.
 */
const expireNow = async (ids: string[], d = db.db) => {
  const past = new Date(Date.now() - 1000);
  await d.collection('messages').updateMany({ _id: { $in: ids } } as never, { $set: { expiresAt: past } });
  await d.collection('message_expiries').updateMany({ _id: { $in: ids } } as never, { $set: { at: past } });
};

/** Documents that still hold any content of these messages. */
const withContent = (ids: string[]) =>
  db.db
    .collection('messages')
    .countDocuments({ _id: { $in: ids }, $or: [{ text: { $exists: true } }, { sender: { $exists: true } }] } as never);

test('setMessageTtl: either user of a direct conversation, 30..2592000 or null; else BAD_USER_INPUT or FORBIDDEN', async () => {
  const a = await user();
  const b = await user();
  for (const seconds of [29, 2592001, 0, -5]) {
    expect(await a.errorCode(TTL, { with: b.id, seconds })).toBe('BAD_USER_INPUT');
  }
  expect(await a.errorCode(TTL, { seconds: 60 })).toBe('FORBIDDEN'); // the lobby is nobody's
  expect(await a.errorCode(TTL, { with: b.id, room: 'r', seconds: 60 })).toBe('BAD_USER_INPUT');
  await send(a, 'before', b.id);
  expect((await a.data(TTL, { with: b.id, seconds: 30 })).setMessageTtl).toBe(true);
  const [conv] = (await b.data<{ conversations: Array<{ messageTtlSeconds: number | null }> }>(CONVERSATIONS))
    .conversations;
  expect(conv.messageTtlSeconds).toBe(30);
  const m = await send(b, 'disappears', a.id);
  expect(Date.parse(m.expiresAt!) - Date.parse(m.createdAt)).toBe(30000);
  await b.data(TTL, { with: a.id, seconds: null });
  expect((await send(a, 'stays', b.id)).expiresAt).toBeNull();
});

test('expired messages vanish from messages, replays, lastMessage and unread counts, and are purged from the database', async () => {
  const a = await user();
  const b = await user();
  const kept = await send(a, 'kept', b.id);
  await a.data(TTL, { with: b.id, seconds: 3600 });
  const gone1 = await send(a, 'gone 1', b.id);
  await b.data(REACT, { id: gone1.id });
  const gone2 = await send(a, 'gone 2', b.id);
  expect(gone2.expiresAt).not.toBeNull();
  await expireNow([gone1.id, gone2.id]);
  // Removed from the database by the purge job: only a position stub remains, no content, no reactions.
  await waitForValue(
    () => withContent([gone1.id, gone2.id]),
    (n) => n === 0,
    { what: 'the purge', timeout: 10000 },
  );

  // Gone from history, lastMessage and unreadCount; a reply to them, a reaction to them are refused.
  expect(await texts(b, a.id)).toEqual(['kept']);
  const [conv] = (
    await b.data<{ conversations: Array<{ unreadCount: number; lastMessage: { id: string } | null }> }>(CONVERSATIONS)
  ).conversations;
  expect(conv).toMatchObject({ unreadCount: 1, lastMessage: { id: kept.id } });
  expect(await b.errorCode(SEND, { text: 'x', to: a.id, replyTo: gone1.id })).toBe('BAD_USER_INPUT');
  expect(await b.errorCode(REACT, { id: gone2.id })).toBe('BAD_USER_INPUT');

  expect(await db.db.collection('reactions').countDocuments({ message: gone1.id })).toBe(0);
  const stub = await db.db.collection('messages').findOne({ _id: gone2.id as never });
  expect(Object.keys(stub ?? {}).sort()).toEqual(['_id', 'conversation', 'counts', 'expiresAt', 'purgedAt', 'seq']);
  expect(await db.db.collection('messages').countDocuments({ _id: kept.id as never, text: 'kept' })).toBe(1);

  // The sequence goes on past the expired newest message: a client resuming after it (by
  // cursor or by id) gets what still exists, in order, with no error.
  const next = await send(a, 'after the gap', b.id);
  expect(Buffer.from(next.cursor, 'base64url').toString()).toBe('m4');
  expect(await texts(b, a.id, kept.cursor)).toEqual(['after the gap']);
  expect(await texts(b, a.id, gone2.cursor)).toEqual(['after the gap']);
  const ws = b.ws();
  try {
    const sub = ws.subscribe<{ messageAdded: { text: string } }>(ADDED, { with: a.id, after: kept.id });
    const sub2 = ws.subscribe<{ messageAdded: { text: string } }>(ADDED, { with: a.id, after: gone1.id });
    await sub.waitForCount(1);
    await sub2.waitForCount(1);
    await subscriptionsAttached(server, 2);
    await send(a, 'live', b.id);
    expect((await sub.waitForCount(2)).map((i) => i.messageAdded.text)).toEqual(['after the gap', 'live']);
    expect((await sub2.waitForCount(2)).map((i) => i.messageAdded.text)).toEqual(['after the gap', 'live']);
  } finally {
    await ws.close();
  }
  const [after] = (
    await b.data<{ conversations: Array<{ unreadCount: number; lastMessage: { id: string } | null }> }>(CONVERSATIONS)
  ).conversations;
  expect(after.unreadCount).toBe(3);
});

test('the newest message expiring keeps the conversation going: the next message takes the next number', async () => {
  const a = await user();
  const b = await user();
  await a.data(TTL, { with: b.id, seconds: 30 });
  const only = await send(a, 'only', b.id);
  await expireNow([only.id]);
  await waitForValue(
    () => withContent([only.id]),
    (n) => n === 0,
    { what: 'the purge', timeout: 10000 },
  );
  // A server that never saw this conversation derives its head from the database alone.
  const fresh = await startServer({ dbName: server.dbName });
  try {
    const a2 = Object.assign(new TestClient(fresh), { cookie: a.cookie });
    const next = await send(a2, 'next', b.id);
    expect(Buffer.from(next.cursor, 'base64url').toString()).toBe('m2');
    const [conv] = (
      await b.data<{ conversations: Array<{ unreadCount: number; lastMessage: { id: string } | null }> }>(CONVERSATIONS)
    ).conversations;
    expect(conv).toMatchObject({ unreadCount: 1, lastMessage: { id: next.id } });
  } finally {
    await fresh.close();
  }
});

test('RETENTION_DAYS bounds every message: new ones carry expiresAt, older ones are purged', async () => {
  const retaining = await startServer({
    dbName: server.dbName,
    env: { RETENTION_DAYS: '1', PURGE_INTERVAL_MS: '200' },
  });
  try {
    const a = await user(retaining);
    const m = await send(a, 'kept for a day');
    expect(Date.parse(m.expiresAt!) - Date.parse(m.createdAt)).toBe(86400000);
    const old = await send(a, 'two days old');
    // Stored before retention was configured, two days ago:
    await db.db
      .collection('messages')
      .updateOne(
        { _id: old.id as never },
        { $set: { createdAt: new Date(Date.now() - 2 * 86400000) }, $unset: { expiresAt: '' } },
      );
    await waitForValue(
      () => withContent([old.id]),
      (n) => n === 0,
      { what: 'the purge', timeout: 10000 },
    );
    expect(await texts(a)).toEqual(['kept for a day']);
  } finally {
    await retaining.close();
  }
});

test('a long expired history is purged in small batches while the chat goes on, including timed messages from before the expiry log', async () => {
  // One unordered bulkWrite of 500 replacements outlasted the driver's socket timeout on
  // FerretDB and every pass failed, stalling sends too (found by the lifecycle benchmark).
  // Half the history is in the purge's log, as the send path records it; the other half was
  // stored by a version without the log, which the next instance to start records once.
  // Either way the purge reads only the log, then the messages it names by `_id`.
  const env = { PURGE_INTERVAL_MS: '200' };
  const first = await startServer({ env });
  const freshDb = await openDb(first.mongodbUri);
  let second: TestServer | undefined;
  try {
    const n = 600;
    const createdAt = new Date(Date.now() - 2 * 3600_000);
    const expiresAt = new Date(Date.now() - 3600_000);
    const id = (i: number) => `lobby:${String(i + 1).padStart(12, '0')}`;
    const expiries = freshDb.db.collection('message_expiries');
    // The first instance has recorded that this database's timed messages are in the log.
    await waitForValue(
      () => expiries.countDocuments({ _id: '~migrated' } as never),
      (c) => c === 1,
      { what: 'the expiry log marked complete' },
    );
    await freshDb.db.collection('messages').insertMany(
      Array.from({ length: n }, (_, i) => ({
        _id: id(i),
        conversation: 'lobby',
        seq: i + 1,
        text: `expired ${i + 1}`,
        sender: 'a'.repeat(24),
        recipient: null,
        clientId: null,
        createdAt,
        readAt: null,
        expiresAt,
      })) as never[],
    );
    // (The send path writes the entry first; here the messages go first, or a pass between the
    // two would drop the entries as those of failed inserts, their time being long past.)
    await expiries.insertMany(Array.from({ length: n / 2 }, (_, i) => ({ _id: id(i), at: expiresAt })) as never[]);
    const unpurged = () =>
      freshDb.db.collection('messages').countDocuments({ seq: { $lte: n }, purgedAt: { $exists: false } });
    // Nothing woke the first instance (no send recorded these), so both halves wait. Without the
    // mark the database counts as one from before the log: the next instance to start records
    // what it finds once (the logged half is already there), then purges all of it.
    expect(await unpurged()).toBe(n);
    await expiries.deleteOne({ _id: '~migrated' } as never);
    second = await startServer({ dbName: first.dbName, env });
    await waitForValue(unpurged, (left) => left === 0, { what: 'the purge of the expired history', timeout: 25000 });
    await waitForValue(
      () => expiries.find({}).toArray(),
      (left) => left.length === 1 && left[0]._id === ('~migrated' as never),
      { what: 'the log emptied, with its mark back' },
    );
    // The chat went on: a message sent now takes the number after the purged ones.
    const a = await user(second);
    const m = await send(a, 'still here');
    expect(m.id).toBe(id(n));
  } finally {
    await freshDb.close();
    await second?.close();
    await first.close();
  }
}, 60000);

test('with nothing that can expire the purge skips its passes, and a message with a timer sent on another instance wakes it', async () => {
  // Scanning a large history on FerretDB every interval for nothing would cost the database a
  // full read each time; the wake-up travels over pub/sub (Redis) to every instance.
  const env = {
    PURGE_INTERVAL_MS: '100',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `anonymo-test-purge-${randomUUID()}:`,
  };
  const one = await startServer({ env });
  const two = await startServer({ dbName: one.dbName, env });
  const oneDb = await openDb(one.mongodbUri);
  const messages = oneDb.db.collection('messages');
  try {
    const passes = async (s: TestServer) => {
      const text = await scrape(s);
      return {
        scanned: sample(text, 'anonymo_purge_passes_total', { outcome: 'scanned' }) ?? 0,
        skipped: sample(text, 'anonymo_purge_passes_total', { outcome: 'skipped' }) ?? 0,
        purged: sample(text, 'anonymo_messages_purged_total') ?? 0,
      };
    };
    // Idle: after the scan every instance makes when it starts, passes are skipped.
    const idle = await waitForValue(
      () => passes(two),
      (p) => p.skipped >= 12,
      { what: 'skipped passes', timeout: 15000 },
    );
    expect(idle.scanned).toBe(1);

    const a = await user(one);
    const b = await user(one);
    await a.data(TTL, { with: b.id, seconds: 30 });
    const m = await send(a, 'wakes every instance', b.id);
    expect(m.expiresAt).not.toBeNull();
    // Instance two learns of it over Redis and scans on every pass while it is pending.
    const sent = await passes(two);
    const woken = await waitForValue(
      () => passes(two),
      (p) => p.scanned >= sent.scanned + 2,
      { what: 'instance two woken', timeout: 10000 },
    );
    const awake = await waitForValue(
      () => passes(two),
      (p) => p.scanned >= woken.scanned + 3,
      { what: 'instance two scanning on every pass', timeout: 10000 },
    );
    expect(awake.skipped).toBeLessThanOrEqual(woken.skipped + 1);

    await expireNow([m.id], oneDb.db);
    await waitForValue(
      () => messages.countDocuments({ _id: m.id, text: { $exists: true } } as never),
      (n) => n === 0,
      { what: 'the purge', timeout: 10000 },
    );
    expect(await messages.countDocuments({ _id: m.id, purgedAt: { $exists: true } } as never)).toBe(1);
    // Both instances may have read it as expired before either wrote the stub (the purge is idempotent).
    const purged = (await passes(one)).purged + (await passes(two)).purged;
    expect(purged).toBeGreaterThanOrEqual(1);
    expect(purged).toBeLessThanOrEqual(2);
    // Nothing left that could expire: both go back to skipping.
    for (const s of [one, two]) {
      const now = await passes(s);
      await waitForValue(
        () => passes(s),
        (p) => p.skipped >= now.skipped + 3,
        { what: 'skipping again', timeout: 10000 },
      );
    }
  } finally {
    await oneDb.close();
    await two.close();
    await one.close();
  }
}, 40000);
