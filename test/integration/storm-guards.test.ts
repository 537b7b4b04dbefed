/**
 * How the server protects itself in a reconnect storm (docs/OPERATIONS.md): upgrades beyond
 * WS_UPGRADE_RATE are refused with 503 and Retry-After before anything is read for them,
 * replays beyond REPLAY_CONCURRENCY wait in line and still deliver everything in order, and
 * a replay stops reading as soon as its subscriber's socket is gone.
 */
import { Socket } from 'node:net';
import { TestClient } from '../helpers/client';
import { sample, scrape, subscriptionsAttached, waitForSample } from '../helpers/metrics';
import { RawSocket, upgrade } from '../helpers/raw-ws';
import { startServer, type TestServer } from '../helpers/server';
import { waitForValue } from '../helpers/wait';

const SEND = 'mutation($text: String!) { sendMessage(input: { text: $text }) { id } }';
const ADDED = 'subscription($after: String) { messageAdded(after: $after) { id text } }';
/** `after` = before the first message of the conversation. */
const FIRST = Buffer.from('m0').toString('base64url');

jest.setTimeout(120000);

/** Sends `count` lobby messages from `senders` clients in parallel; resolves with their texts in no particular order. */
async function seedLobby(server: TestServer, count: number, senders = 10): Promise<void> {
  const clients = Array.from({ length: senders }, () => new TestClient(server));
  let next = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (next < count) {
        const i = next++;
        await c.data(SEND, { text: `seed ${i}` });
      }
    }),
  );
}

describe('upgrades above WS_UPGRADE_RATE', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { WS_UPGRADE_RATE: '1', WS_UPGRADE_BURST: '2' } });
  });
  afterAll(() => server.close());

  test('are answered 503 with a Retry-After that spreads the refused clients over later seconds', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => upgrade(server.wsUrl)));
    try {
      const refused = results.filter((r) => r.status !== 101);
      expect(refused.length).toBeGreaterThanOrEqual(3);
      for (const r of refused) {
        expect(r.status).toBe(503);
        expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
      // Each refusal is promised a later slot than the one before: not all told "1 second".
      const waits = refused.map((r) => Number(r.headers['retry-after']));
      expect(Math.max(...waits)).toBeGreaterThanOrEqual(refused.length - 1);
      const text = await scrape(server);
      expect(sample(text, 'anonymo_websocket_upgrades_refused_total', { reason: 'rate' })).toBe(refused.length);
    } finally {
      results.forEach((r) => r.ws?.terminate());
    }
  });
});

describe('replays', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { REPLAY_CONCURRENCY: '1', REPLAY_QUEUE: '1000' } });
  });
  afterAll(() => server.close());

  test('beyond REPLAY_CONCURRENCY wait their turn, and each subscriber still gets every message once, in order', async () => {
    await seedLobby(server, 250);
    const page = await new TestClient(server).data<{ messages: { edges: Array<{ node: { id: string } }> } }>(
      'query { messages(last: 100) { edges { node { id } } } }',
    );
    const newest = page.messages.edges[page.messages.edges.length - 1].node.id;
    const sockets = await Promise.all(Array.from({ length: 8 }, () => RawSocket.open(server.wsUrl)));
    try {
      await Promise.all(sockets.map((s) => s.init()));
      sockets.forEach((s) =>
        s.json({ id: 's', type: 'subscribe', payload: { query: ADDED, variables: { after: FIRST } } }),
      );
      for (const s of sockets) {
        await s.next((m) => (m.payload as any)?.data?.messageAdded?.id === newest, 60000);
        const ids = s.messages.filter((m) => m.type === 'next').map((m) => (m.payload as any).data.messageAdded.id);
        expect(ids).toHaveLength(250);
        expect(new Set(ids).size).toBe(250);
        // Ids are `<conversation>:<zero-padded seq>`: every number from 1 to 250, in order.
        const seqs = ids.map((id: string) => Number(id.slice(-12)));
        expect(seqs).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
      }
      await subscriptionsAttached(server, 8);
      const text = await scrape(server);
      expect(sample(text, 'anonymo_replays', { state: 'running' })).toBe(0);
      expect(sample(text, 'anonymo_replays', { state: 'waiting' })).toBe(0);
      expect(sample(text, 'anonymo_replayed_messages_total')).toBeGreaterThanOrEqual(8 * 250);
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
    }
    await subscriptionsAttached(server, 0);
  });

  test('a replay stops reading pages as soon as its subscriber is gone', async () => {
    // 1,500 messages more: 15 pages of 100, most of them older than the in-memory newest.
    await seedLobby(server, 1500);
    const before = sample(await scrape(server), 'anonymo_replay_pages_total') ?? 0;
    const socket = await RawSocket.open(server.wsUrl);
    await socket.init();
    // The subscriber drops its connection on the first message it receives.
    socket.ws.once('message', () => socket.ws.terminate());
    socket.json({ id: 's', type: 'subscribe', payload: { query: ADDED, variables: { after: FIRST } } });
    await socket.closed;
    await waitForSample(server, 'anonymo_replays', { state: 'running' }, (v) => v === 0, 30000);
    await subscriptionsAttached(server, 0, 30000);
    // Nothing reads on for the gone subscriber: the count stays where the replay stopped.
    const pages = await waitForValue(
      async () => (sample(await scrape(server), 'anonymo_replay_pages_total') ?? 0) - before,
      (v) => v > 0,
      { what: 'the replay to have read a page' },
    );
    // Without the check it read 14 of its 15+ pages after the socket was gone; with it, 2.
    expect(pages).toBeLessThanOrEqual(6);
    const again = (sample(await scrape(server), 'anonymo_replay_pages_total') ?? 0) - before;
    expect(again).toBe(pages);
  });
});

describe('replay writes', () => {
  let server: TestServer;
  beforeAll(async () => {
    // No keepalive pings: one landing during the replay would be a write of its own.
    server = await startServer({ env: { WS_KEEPALIVE_MS: '0' } });
  });
  afterAll(() => server.close());

  test("a replay page reaches the subscriber's socket in one write, in order, and live messages follow it", async () => {
    await seedLobby(server, 60);
    const socket = await RawSocket.open(server.wsUrl);
    // The server's end of this connection is the socket whose remote port is the client's own.
    const clientPort = (socket.ws as unknown as { _socket: Socket })._socket.localPort;
    // Every write a stream makes reaches the kernel through `_write` (one chunk) or `_writev`
    // (corked chunks): one call, one system call.
    const writes: number[] = [];
    const count = (method: '_write' | '_writev') => {
      const original = Socket.prototype[method] as (...args: unknown[]) => void;
      return jest.spyOn(Socket.prototype, method).mockImplementation(function (this: Socket, ...args: unknown[]) {
        if (this.remotePort === clientPort) writes.push(Date.now());
        original.apply(this, args);
      });
    };
    const spies = [count('_write'), count('_writev')];
    try {
      await socket.init();
      const afterAck = writes.length;
      socket.json({ id: 's', type: 'subscribe', payload: { query: ADDED, variables: { after: FIRST } } });
      const seqOf = (m: { payload?: unknown }) => Number((m.payload as any)?.data?.messageAdded?.id?.slice(-12));
      await socket.next((m) => seqOf(m) === 60, 30000);
      const seqs = socket.messages.filter((m) => m.type === 'next').map(seqOf);
      expect(seqs).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      // One write for the 60 frames (one per frame before: 60 system calls per resuming client).
      expect(writes.length - afterAck).toBe(1);
      await subscriptionsAttached(server, 1);
      await new TestClient(server).data(SEND, { text: 'live' });
      await socket.next((m) => seqOf(m) === 61);
      expect(socket.messages.filter((m) => m.type === 'next').map(seqOf)).toEqual(
        Array.from({ length: 61 }, (_, i) => i + 1),
      );
    } finally {
      spies.forEach((s) => s.mockRestore());
      await socket.close();
    }
  });
});

describe('replays after a restart', () => {
  test('the connections of one identity read its session and user from the database once, not once each', async () => {
    const first = await startServer();
    let second: TestServer | undefined;
    const sockets: RawSocket[] = [];
    try {
      const browser = new TestClient(first);
      const me = await browser.me();
      // A restarted instance: nothing cached, the same database; every tab of the identity
      // reconnects at the same moment. (Its presence sweep, a `find` of its own, is not due
      // during the test.)
      second = await startServer({ dbName: first.dbName, env: { PRESENCE_GRACE_MS: '60000' } });
      const finds = async () => sample(await scrape(second!), 'anonymo_db_commands_total', { command: 'find' }) ?? 0;
      const before = await finds();
      sockets.push(
        ...(await Promise.all(
          Array.from({ length: 40 }, () => RawSocket.open(second!.wsUrl, { cookie: browser.cookie! })),
        )),
      );
      await Promise.all(sockets.map((s) => s.init()));
      const upgraded = (await finds()) - before;
      // Each connection is the identity's own (no new identity was made for any of them).
      const viewer = sockets[0];
      viewer.json({ id: 'me', type: 'subscribe', payload: { query: '{ me { id } }' } });
      expect(((await viewer.next((m) => m.id === 'me' && m.type === 'next')).payload as any).data.me.id).toBe(me.id);
      // The session, the user and the head of the user's block log, once each. Before, each
      // upgrade that arrived while those reads were in flight read the session and the user
      // again (4-5 finds here, where the upgrades overlap only partly; thousands in a storm).
      expect(upgraded).toBeLessThanOrEqual(3);
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await second?.close();
      await first.close();
    }
  });

  test('subscribers catching up on the same messages read them from the database once, not once each', async () => {
    const first = await startServer();
    let second: TestServer | undefined;
    const sockets: RawSocket[] = [];
    try {
      await seedLobby(first, 40, 2);
      // The restarted instance: nothing in memory, the same database. What it stores itself
      // (41..45) it holds; 31..40, which every subscriber below missed, it must read.
      second = await startServer({ dbName: first.dbName });
      await seedLobby(second, 5, 1);
      sockets.push(...(await Promise.all(Array.from({ length: 40 }, () => RawSocket.open(second!.wsUrl)))));
      await Promise.all(sockets.map((s) => s.init()));
      const finds = async () => sample(await scrape(second!), 'anonymo_db_commands_total', { command: 'find' }) ?? 0;
      const before = await finds();
      const after30 = Buffer.from('m30').toString('base64url');
      sockets.forEach((s) =>
        s.json({ id: 's', type: 'subscribe', payload: { query: ADDED, variables: { after: after30 } } }),
      );
      const seqOf = (m: { payload?: unknown }) => Number((m.payload as any)?.data?.messageAdded?.id?.slice(-12));
      for (const s of sockets) {
        await s.next((m) => seqOf(m) === 45, 60000);
        const seqs = s.messages.filter((m) => m.type === 'next').map(seqOf);
        expect(seqs).toEqual(Array.from({ length: 15 }, (_, i) => 31 + i));
      }
      // Once: the ten missing messages (ten `_id` lookups on FerretDB, one range on MongoDB),
      // the senders, the head. Each subscriber reading them itself made 40 × 15 lookups.
      expect((await finds()) - before).toBeLessThanOrEqual(25);
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await second?.close();
      await first.close();
    }
  });
});
