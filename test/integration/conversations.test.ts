import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { nextMillisecond, waitFor } from '../helpers/wait';
import { startServer, type TestServer } from '../helpers/server';

const SEND = 'mutation($to: ID, $text: String!) { sendMessage(input: { text: $text, to: $to }) { id createdAt } }';
const CONVERSATIONS =
  '{ conversations { unreadCount with { id username } lastMessage { id text readAt sender { id } } } }';
const MARK = 'mutation($with: ID!, $upTo: ID!) { markRead(with: $with, upTo: $upTo) }';
const HISTORY = 'query($with: ID) { messages(with: $with) { edges { node { id text readAt sender { id } } } } }';
const RECEIPTS =
  'subscription($with: ID!) { messagesRead(with: $with) { count readAt reader { id } upTo { id readAt } } }';

type Conv = {
  unreadCount: number;
  with: { id: string; username: string };
  lastMessage: { id: string; text: string; readAt: string | null; sender: { id: string } } | null;
};

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});
afterEach(() => noSubscriptionsLeft(server));

async function conversations(c: TestClient): Promise<Conv[]> {
  return (await c.data<{ conversations: Conv[] }>(CONVERSATIONS)).conversations;
}

describe('read status and conversations', () => {
  test('markRead counts, unreadCount before and after, readAt stored, and the sender gets a receipt', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    const aWs = alice.ws();
    try {
      const receipts = aWs.subscribe(RECEIPTS, { with: b.id });
      await aWs.connected();
      await subscriptionsAttached(server, 1);
      const sent: string[] = [];
      for (let i = 1; i <= 5; i++) sent.push((await alice.data(SEND, { to: b.id, text: `a${i}` })).sendMessage.id);
      const bobReply = (await bob.data(SEND, { to: a.id, text: 'b1' })).sendMessage.id;

      expect((await conversations(bob)).find((c) => c.with.id === a.id)?.unreadCount).toBe(5);
      // Bob's own message does not count as unread for him; Alice has one unread (Bob's).
      expect((await conversations(alice)).find((c) => c.with.id === b.id)?.unreadCount).toBe(1);

      expect((await bob.data(MARK, { with: a.id, upTo: sent[2] })).markRead).toBe(3);
      expect((await conversations(bob)).find((c) => c.with.id === a.id)?.unreadCount).toBe(2);
      const [receipt] = await receipts.waitForCount(1);
      expect(receipt.messagesRead).toMatchObject({ count: 3, reader: { id: b.id }, upTo: { id: sent[2] } });
      expect(receipt.messagesRead.upTo.readAt).not.toBeNull();

      // Marking the same range again changes nothing.
      expect((await bob.data(MARK, { with: a.id, upTo: sent[1] })).markRead).toBe(0);
      // Up to Bob's own reply: Alice's remaining two, not Bob's own message.
      expect((await bob.data(MARK, { with: a.id, upTo: bobReply })).markRead).toBe(2);
      expect((await conversations(bob)).find((c) => c.with.id === a.id)?.unreadCount).toBe(0);

      const history = (await alice.data(HISTORY, { with: b.id })).messages.edges.map((e: any) => e.node);
      for (const m of history) {
        if (m.sender.id === a.id) expect(m.readAt).not.toBeNull();
        else expect(m.readAt).toBeNull();
      }
      // A new message makes it unread again.
      await alice.data(SEND, { to: b.id, text: 'a6' });
      expect((await conversations(bob)).find((c) => c.with.id === a.id)?.unreadCount).toBe(1);
    } finally {
      await aWs.close();
    }
  });

  test('markRead rejects messages of other conversations and unknown ids, changing nothing', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const carol = new TestClient(server);
    const [a, b, c] = [await alice.me(), await bob.me(), await carol.me()];
    const toBob = (await alice.data(SEND, { to: b.id, text: 'for bob' })).sendMessage.id;
    const toCarol = (await alice.data(SEND, { to: c.id, text: 'for carol' })).sendMessage.id;
    const lobby = (await alice.data(SEND, { text: 'lobby' })).sendMessage.id;
    for (const upTo of [toCarol, lobby, 'nope', `${toBob.slice(0, -1)}9`]) {
      expect(await bob.errorCode(MARK, { with: a.id, upTo })).toBe('BAD_USER_INPUT');
    }
    expect(await carol.errorCode(MARK, { with: a.id, upTo: toBob })).toBe('BAD_USER_INPUT');
    const { db, close } = await openDb(server.mongodbUri);
    try {
      expect(
        (await db.collection<{ _id: string; readAt: Date | null }>('messages').findOne({ _id: toBob }))?.readAt,
      ).toBeNull();
      expect(
        (await db.collection<{ _id: string; readAt: Date | null }>('messages').findOne({ _id: toCarol }))?.readAt,
      ).toBeNull();
    } finally {
      await close();
    }
  });

  test('conversations lists only the viewer’s direct conversations, newest activity first', async () => {
    const me = new TestClient(server);
    const x = new TestClient(server);
    const y = new TestClient(server);
    const z = new TestClient(server);
    const stranger = new TestClient(server);
    const [m, xi, yi, zi] = [await me.me(), await x.me(), await y.me(), await z.me()];
    await stranger.me();
    expect(await conversations(me)).toEqual([]);
    await me.data(SEND, { to: xi.id, text: 'to x' });
    await nextMillisecond();
    await y.data(SEND, { to: m.id, text: 'from y' });
    await nextMillisecond();
    await me.data(SEND, { to: zi.id, text: 'to z' });
    await nextMillisecond();
    await stranger.data(SEND, { to: xi.id, text: 'not mine' });
    await me.data(SEND, { text: 'lobby does not count' });
    expect((await conversations(me)).map((c) => [c.with.id, c.lastMessage?.text])).toEqual([
      [zi.id, 'to z'],
      [yi.id, 'from y'],
      [xi.id, 'to x'],
    ]);
    // New activity moves a conversation to the top.
    await x.data(SEND, { to: m.id, text: 'x again' });
    const list = await conversations(me);
    expect(list.map((c) => c.with.id)).toEqual([xi.id, zi.id, yi.id]);
    expect(list[0]).toMatchObject({ unreadCount: 1, lastMessage: { text: 'x again', sender: { id: xi.id } } });
    expect((await conversations(x)).map((c) => c.with.id).sort()).toEqual([m.id, (await stranger.me()).id].sort());
  });

  test('many users messaging one user at once all appear in their conversations', async () => {
    const hub = new TestClient(server);
    const h = await hub.me();
    const senders = Array.from({ length: 12 }, () => new TestClient(server));
    await Promise.all(senders.map((s) => s.me()));
    await Promise.all(senders.map((s, i) => s.data(SEND, { to: h.id, text: `hi ${i}` })));
    const list = await conversations(hub);
    expect(list).toHaveLength(12);
    expect(list.every((c) => c.unreadCount === 1)).toBe(true);
  });

  test('conversationUpdated pushes each participant’s view of a conversation as it changes, to nobody else', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const eve = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    await eve.me();
    const UPDATED = 'subscription { conversationUpdated { unreadCount with { id } lastMessage { id text } } }';
    const [aWs, bWs, eWs] = [alice.ws(), bob.ws(), eve.ws()];
    try {
      const aliceSees = aWs.subscribe(UPDATED);
      const bobSees = bWs.subscribe(UPDATED);
      const eveSees = eWs.subscribe(UPDATED);
      await Promise.all([aWs.connected(), bWs.connected(), eWs.connected()]);
      await subscriptionsAttached(server, 3);
      const sent = (await alice.data(SEND, { to: b.id, text: 'new conversation' })).sendMessage.id;
      const [forBob] = await bobSees.waitForCount(1);
      expect(forBob.conversationUpdated).toEqual({
        unreadCount: 1,
        with: { id: a.id },
        lastMessage: { id: sent, text: 'new conversation' },
      });
      const [forAlice] = await aliceSees.waitForCount(1);
      expect(forAlice.conversationUpdated).toMatchObject({ unreadCount: 0, with: { id: b.id } });
      await bob.data(MARK, { with: a.id, upTo: sent });
      await bobSees.waitForCount(2);
      expect(bobSees.items[1].conversationUpdated).toMatchObject({ unreadCount: 0, with: { id: a.id } });
      // Eve's subscription is live (she gets her own conversation) but saw nothing of theirs.
      await eve.data(SEND, { to: a.id, text: 'hi alice' });
      await eveSees.waitForCount(1);
      expect(eveSees.items.map((i) => i.conversationUpdated.with.id)).toEqual([a.id]);
    } finally {
      await Promise.all([aWs.close(), bWs.close(), eWs.close()]);
    }
  });

  test('a lost pair marker (a crash after the entries were stored) costs at most a duplicate entry: the conversation stays listed once on both sides', async () => {
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    await alice.data(SEND, { to: b.id, text: 'first' });
    // Another instance on the database knows nothing of the pair, as after a restart.
    const other = await startServer({ dbName: server.dbName });
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const pairs = db.collection<{ _id: string }>('inbox_pairs');
      const ids = [`${a.id}:${b.id}`, `${b.id}:${a.id}`];
      // The markers are written beside the message, not before the answer: wait for them, then
      // remove them, as a crash right after the entries would have left things.
      await waitFor(async () => (await pairs.countDocuments({ _id: { $in: ids } })) === 2, {
        what: 'the pair markers',
      });
      await pairs.deleteMany({ _id: { $in: ids } });
      const bobThere = Object.assign(new TestClient(other), { cookie: bob.cookie });
      await bobThere.data(SEND, { to: a.id, text: 'reply' });
      // Without markers the registration appended both entries again...
      const entries = await db
        .collection<{ owner: string; with: string }>('inbox_entries')
        .find({ owner: { $in: [a.id, b.id] } })
        .toArray();
      expect(entries.map((e) => `${e.owner}>${e.with}`).sort()).toEqual(
        [`${a.id}>${b.id}`, `${a.id}>${b.id}`, `${b.id}>${a.id}`, `${b.id}>${a.id}`].sort(),
      );
      // ...which the lists ignore, on both instances.
      const [forAlice, forBob] = [await conversations(alice), await conversations(bobThere)];
      expect(forAlice.map((c) => [c.with.id, c.unreadCount, c.lastMessage?.text])).toEqual([[b.id, 1, 'reply']]);
      expect(forBob.map((c) => [c.with.id, c.unreadCount, c.lastMessage?.text])).toEqual([[a.id, 1, 'reply']]);
      // And the markers are back, so the next registration of the pair appends nothing.
      await waitFor(async () => (await pairs.countDocuments({ _id: { $in: ids } })) === 2, {
        what: 'the pair markers again',
      });
    } finally {
      await close();
      await other.close();
    }
  });

  test('users made here who already talked through another instance: the next message here takes the next number and each side lists the conversation once', async () => {
    // This instance created both users, so it knows their inboxes as empty, takes the
    // conversation to be empty and numbers its next message 1 without reading the head. The
    // insert finds 1 taken: the message must still get the next number, nothing overwritten.
    const alice = new TestClient(server);
    const bob = new TestClient(server);
    const [a, b] = [await alice.me(), await bob.me()];
    const other = await startServer({ dbName: server.dbName });
    try {
      const aliceThere = Object.assign(new TestClient(other), { cookie: alice.cookie });
      const bobThere = Object.assign(new TestClient(other), { cookie: bob.cookie });
      const ids = [(await aliceThere.data(SEND, { to: b.id, text: 'one' })).sendMessage.id as string];
      ids.push((await bobThere.data(SEND, { to: a.id, text: 'two' })).sendMessage.id);
      ids.push((await alice.data(SEND, { to: b.id, text: 'three' })).sendMessage.id);
      expect(ids.map((id) => Number(id.slice(-12)))).toEqual([1, 2, 3]);
      const history = await bob.data(HISTORY, { with: a.id });
      expect(
        history.messages.edges.map((e: { node: { id: string; text: string } }) => [e.node.id, e.node.text]),
      ).toEqual([
        [ids[0], 'one'],
        [ids[1], 'two'],
        [ids[2], 'three'],
      ]);
      const [forAlice, forBob] = [await conversations(alice), await conversations(bob)];
      expect(forAlice.map((c) => [c.with.id, c.unreadCount, c.lastMessage?.text])).toEqual([[b.id, 1, 'three']]);
      expect(forBob.map((c) => [c.with.id, c.unreadCount, c.lastMessage?.text])).toEqual([[a.id, 2, 'three']]);
    } finally {
      await other.close();
    }
  });

  test('two instances recording conversations of one user at the same moment lose none of them', async () => {
    // A second server on the same database, as behind a load balancer (FerretDB applies
    // concurrent upserts and updates of one document without isolation).
    const other = await startServer({ dbName: server.dbName });
    try {
      const owner = (await new TestClient(server).me()).id;
      const partners = await Promise.all(Array.from({ length: 16 }, () => new TestClient(server).me()));
      await Promise.all(
        partners.map((p, i) => (i % 2 ? other : server).services.conversations.registerPair(owner, p.id)),
      );
      const { db, close } = await openDb(server.mongodbUri);
      try {
        const entries = await db
          .collection<{ _id: string; owner: string; with: string }>('inbox_entries')
          .find({ owner })
          .toArray();
        expect([...new Set(entries.map((e) => e.with))].sort()).toEqual(partners.map((p) => p.id).sort());
        // Both instances see all of them through the API.
        const ownerRecord = (await server.services.users.get(owner))!;
        expect(await server.services.conversations.list(ownerRecord)).toHaveLength(16);
        expect(await other.services.conversations.list(ownerRecord)).toHaveLength(16);
      } finally {
        await close();
      }
    } finally {
      await other.close();
    }
  });
});
