import { TestClient } from '../helpers/client';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';

const SEND =
  'mutation($to: ID, $text: String!, $clientId: String) { sendMessage(input: { text: $text, to: $to, clientId: $clientId }) { id cursor } }';
const ADDED = 'subscription($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id text } }';
const PAGE =
  'query($with: ID, $last: Int) { messages(with: $with, last: $last) { edges { cursor node { id text } } pageInfo { endCursor } } }';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});
afterEach(() => noSubscriptionsLeft(server));

async function dmPair() {
  const a = new TestClient(server);
  const b = new TestClient(server);
  const [am, bm] = [await a.me(), await b.me()];
  return { a, b, am, bm };
}

describe('messageAdded with after: replay, then live', () => {
  test('resuming after an edge cursor replays what was missed, in order, then continues live', async () => {
    const { a, b, am, bm } = await dmPair();
    for (let i = 1; i <= 3; i++) await a.data(SEND, { to: bm.id, text: `seen${i}` });
    const page = await b.data(PAGE, { with: am.id, last: 10 });
    const cursor = page.messages.pageInfo.endCursor;
    // While "offline", more arrive.
    for (let i = 1; i <= 4; i++) await a.data(SEND, { to: bm.id, text: `missed${i}` });
    const ws = b.ws();
    try {
      const sub = ws.subscribe(ADDED, { with: am.id, after: cursor });
      await sub.waitForCount(4);
      expect(sub.items.map((i) => i.messageAdded.text)).toEqual(['missed1', 'missed2', 'missed3', 'missed4']);
      await a.data(SEND, { to: bm.id, text: 'live1' });
      await sub.waitForCount(5);
      expect(sub.items[4].messageAdded.text).toBe('live1');
    } finally {
      await ws.close();
    }
  });

  test('after also accepts the id of the last message seen', async () => {
    const { a, b, am, bm } = await dmPair();
    const first = (await a.data(SEND, { to: bm.id, text: 'one' })).sendMessage;
    await a.data(SEND, { to: bm.id, text: 'two' });
    const ws = b.ws();
    try {
      const sub = ws.subscribe(ADDED, { with: am.id, after: first.id });
      await sub.waitForCount(1);
      expect(sub.items.map((i) => i.messageAdded.text)).toEqual(['two']);
    } finally {
      await ws.close();
    }
  });

  // 250 sequential sends set this up: on a loaded 2-core machine that alone can take 20 s (hence 60 s).
  test('messages sent during a long replay arrive once each, in order, with no gap', async () => {
    const { a, b, am, bm } = await dmPair();
    // 250 stored messages: longer than one replay batch, so replay and live overlap.
    await a.me();
    for (let i = 1; i <= 250; i++) await a.data(SEND, { to: bm.id, text: `h${i}` });
    const ws = b.ws();
    try {
      const sub = ws.subscribe(ADDED, { with: am.id, after: Buffer.from('m0').toString('base64url') });
      // Live messages race the replay from two senders at once.
      const live = Promise.all([
        (async () => {
          for (let i = 1; i <= 20; i++) await a.data(SEND, { to: bm.id, text: `la${i}` });
        })(),
        (async () => {
          for (let i = 1; i <= 20; i++) await b.data(SEND, { to: am.id, text: `lb${i}` });
        })(),
      ]);
      await live;
      await sub.waitForCount(290, 20000);
      const stored = (await b.data(PAGE, { with: am.id, last: 100 })).messages.edges.map((e: any) => e.node.id);
      // Nothing more (no late duplicate): a marker sent now arrives right after the 290.
      const items = await sub.before(
        () => a.data(SEND, { to: bm.id, text: 'marker' }),
        (i) => i.messageAdded.text === 'marker',
      );
      const texts = items.map((i) => i.messageAdded.text);
      expect(texts).toHaveLength(290);
      expect(new Set(items.map((i) => i.messageAdded.id)).size).toBe(290);
      // Delivery order is the stored order.
      const deliveredIds = items.map((i) => i.messageAdded.id);
      expect(deliveredIds.slice(-100)).toEqual(stored);
      expect(deliveredIds).toEqual([...deliveredIds].sort());
      expect(texts.slice(0, 250)).toEqual(Array.from({ length: 250 }, (_, i) => `h${i + 1}`));
      // Each sender's live messages keep their own order.
      expect(texts.filter((t) => t.startsWith('la'))).toEqual(Array.from({ length: 20 }, (_, i) => `la${i + 1}`));
      expect(texts.filter((t) => t.startsWith('lb'))).toEqual(Array.from({ length: 20 }, (_, i) => `lb${i + 1}`));
    } finally {
      await ws.close();
    }
  }, 60000);

  test('concurrent senders into one conversation: every subscriber gets the same order as history', async () => {
    const senders = Array.from({ length: 6 }, () => new TestClient(server));
    await Promise.all(senders.map((s) => s.me()));
    const readers = [new TestClient(server), new TestClient(server)];
    const sockets = readers.map((r) => r.ws());
    try {
      // Start after the current newest lobby message, so earlier tests' messages are not replayed.
      const start = (await readers[0].data(PAGE, { last: 1 })).messages.pageInfo.endCursor;
      const subs = sockets.map((ws) => ws.subscribe(ADDED, start ? { after: start } : {}));
      await Promise.all(sockets.map((ws) => ws.connected()));
      await subscriptionsAttached(server, 2);
      await Promise.all(
        senders.map(async (s, k) => {
          for (let i = 0; i < 10; i++) await s.data(SEND, { text: `s${k}-${i}` });
        }),
      );
      await Promise.all(subs.map((s) => s.waitForCount(60, 15000)));
      const [x, y] = subs.map((s) => s.items.map((i) => i.messageAdded.id));
      expect(x).toEqual(y);
      expect(new Set(x).size).toBe(60);
      const history = (await readers[0].data(PAGE, { last: 60 })).messages.edges.map((e: any) => e.node.id);
      expect(x).toEqual(history);
    } finally {
      await Promise.all(sockets.map((ws) => ws.close()));
    }
  });

  test('a bad after is BAD_USER_INPUT: malformed, another conversation’s message, or beyond the newest', async () => {
    const { a, b, am, bm } = await dmPair();
    const lobbyMsg = (await a.data(SEND, { text: 'lobby msg' })).sendMessage.id;
    await a.data(SEND, { to: bm.id, text: 'dm' });
    const ws = b.ws();
    try {
      for (const after of ['%%%', lobbyMsg, Buffer.from('m999999').toString('base64url')]) {
        const sub = ws.subscribe(ADDED, { with: am.id, after });
        await sub.ended();
        expect(JSON.stringify(sub.errors)).toContain('BAD_USER_INPUT');
      }
    } finally {
      await ws.close();
    }
  });

  test('a client that reconnects and resubscribes with the last id it saw misses nothing', async () => {
    const { a, b, am, bm } = await dmPair();
    const ws1 = b.ws();
    const sub1 = ws1.subscribe(ADDED, { with: am.id });
    await ws1.connected();
    await subscriptionsAttached(server, 1);
    await a.data(SEND, { to: bm.id, text: 'before drop' });
    await sub1.waitForCount(1);
    const lastSeen = sub1.items[0].messageAdded.id;
    await ws1.close(); // the phone changes network
    for (let i = 1; i <= 3; i++) await a.data(SEND, { to: bm.id, text: `while away ${i}` });
    const ws2 = b.ws();
    try {
      const sub2 = ws2.subscribe(ADDED, { with: am.id, after: lastSeen });
      await sub2.waitForCount(3);
      await a.data(SEND, { to: bm.id, text: 'after return' });
      await sub2.waitForCount(4);
      expect(sub2.items.map((i) => i.messageAdded.text)).toEqual([
        'while away 1',
        'while away 2',
        'while away 3',
        'after return',
      ]);
    } finally {
      await ws2.close();
    }
  });
});
