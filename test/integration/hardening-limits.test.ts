/**
 * Security, round two (issue 15): the limits that need a server of their own (a tight
 * budget, a proxy in front, two instances on one Redis).
 */
import { randomBytes } from 'node:crypto';
import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { RawSocket, upgrade, type UpgradeResult } from '../helpers/raw-ws';
import { startServer } from '../helpers/server';

const SEND = 'mutation($text: String!) { sendMessage(input: { text: $text }) { id } }';
const closeAll = (results: UpgradeResult[]) => results.forEach((r) => r.ws?.close());

test('resetIdentity counts against the per-address identity budget (finding 1; POW_MODE=off refuses beyond it)', async () => {
  const server = await startServer({ env: { RATE_LIMIT_IDENTITIES_IP: '3/1h', POW_MODE: 'off' } });
  const direct = await openDb(server.mongodbUri);
  const { db } = direct;
  try {
    const browser = new TestClient(server);
    await browser.me(); // 1 of 3
    expect((await browser.gql('mutation { resetIdentity { id } }')).errors).toBeUndefined(); // 2
    expect((await browser.gql('mutation { resetIdentity { id } }')).errors).toBeUndefined(); // 3
    const over = await browser.gql('mutation { resetIdentity { id } }');
    expect(over.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(await db.collection('users').countDocuments()).toBe(3);
    // The identity the browser has keeps working.
    expect((await browser.me()).id).toMatch(/^[0-9a-f]{24}$/);
  } finally {
    await direct.close();
    await server.close();
  }
});

describe('open WebSockets per address and per user (finding 3)', () => {
  test('the connection over either limit gets 429; closing one frees its place', async () => {
    const server = await startServer({ env: { WS_MAX_CONNECTIONS_PER_IP: '3', WS_MAX_CONNECTIONS_PER_USER: '2' } });
    try {
      const [alice, bob] = [new TestClient(server), new TestClient(server)];
      await alice.me();
      await bob.me();
      const a = [
        await upgrade(server.wsUrl, { cookie: alice.cookie! }),
        await upgrade(server.wsUrl, { cookie: alice.cookie! }),
      ];
      expect(a.map((r) => r.status)).toEqual([101, 101]);
      const third = await upgrade(server.wsUrl, { cookie: alice.cookie! });
      expect(third.status).toBe(429);
      expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);

      const b = await upgrade(server.wsUrl, { cookie: bob.cookie! });
      expect(b.status).toBe(101);
      expect((await upgrade(server.wsUrl, { cookie: bob.cookie! })).status).toBe(429); // address full
      expect(server.stats().connections).toBe(3);

      const closing = new RawSocket(a[0].ws!);
      await closing.close();
      let again: UpgradeResult | undefined;
      // The server sees the close shortly after the client does.
      for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
        again = await upgrade(server.wsUrl, { cookie: bob.cookie! });
        if (again.status === 101) break;
      }
      expect(again?.status).toBe(101);
      closeAll([a[1], b, again!]);
    } finally {
      await server.close();
    }
  });

  test('IPv6 addresses of one /64 count as one address', async () => {
    const server = await startServer({ env: { WS_MAX_CONNECTIONS_PER_IP: '2', TRUST_PROXY: 'loopback' } });
    try {
      const open: UpgradeResult[] = [];
      for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9']) {
        open.push(await upgrade(server.wsUrl, { 'x-forwarded-for': ip }));
      }
      expect(open.map((r) => r.status)).toEqual([101, 101]);
      expect((await upgrade(server.wsUrl, { 'x-forwarded-for': '2001:db8:1:2:abcd::1' })).status).toBe(429);
      const otherNet = await upgrade(server.wsUrl, { 'x-forwarded-for': '2001:db8:1:3::1' });
      expect(otherNet.status).toBe(101);
      closeAll([...open, otherNet]);
    } finally {
      await server.close();
    }
  });

  test('with REDIS_URL the count is shared by the instances', async () => {
    const env = {
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `anonymo-test-${randomBytes(4).toString('hex')}:`,
      WS_MAX_CONNECTIONS_PER_IP: '2',
    };
    const one = await startServer({ env });
    const two = await startServer({ env, dbName: one.dbName });
    try {
      const first = await upgrade(one.wsUrl);
      const second = await upgrade(two.wsUrl);
      expect([first.status, second.status]).toEqual([101, 101]);
      expect((await upgrade(one.wsUrl)).status).toBe(429);
      expect((await upgrade(two.wsUrl)).status).toBe(429);
      closeAll([first, second]);
    } finally {
      await two.close();
      await one.close();
    }
  });
});

describe('replays (finding 4)', () => {
  test('a replay further back than MAX_REPLAY_MESSAGES is BAD_USER_INPUT; within it, replayed messages spend a per-connection budget', async () => {
    const server = await startServer({ env: { MAX_REPLAY_MESSAGES: '5', RATE_LIMIT_REPLAY_MESSAGES: '8/1m' } });
    try {
      const browser = new TestClient(server);
      await browser.me();
      const ids: string[] = [];
      for (let i = 1; i <= 8; i++) ids.push((await browser.data(SEND, { text: `m${i}` })).sendMessage.id);
      const watch = 'subscription($after: String) { messageAdded(after: $after) { text } }';
      const ws = browser.ws();
      try {
        const tooFar = ws.subscribe(watch, { after: ids[1] }); // 6 back
        await tooFar.ended();
        expect(JSON.stringify(tooFar.errors)).toMatch(
          /more than 5 messages back.*BAD_USER_INPUT|BAD_USER_INPUT.*more than 5/,
        );

        const ok = ws.subscribe<{ messageAdded: { text: string } }>(watch, { after: ids[2] }); // 5 back
        const got = await ok.waitForCount(5);
        expect(got.map((m) => m.messageAdded.text)).toEqual(['m4', 'm5', 'm6', 'm7', 'm8']);

        const overBudget = ws.subscribe(watch, { after: ids[3] }); // 4 more: 9 of 8
        await overBudget.ended();
        expect(JSON.stringify(overBudget.errors)).toMatch(/RATE_LIMITED/);
        // Live delivery on the same connection is not affected.
        await browser.data(SEND, { text: 'm9' });
        expect((await ok.waitForCount(6))[5].messageAdded.text).toBe('m9');
      } finally {
        await ws.close();
      }
    } finally {
      await server.close();
    }
  });
});

test('HTTP requests per address are limited; the excess gets 429 RATE_LIMITED (finding 7)', async () => {
  const server = await startServer({ env: { RATE_LIMIT_HTTP_IP: '4/1m' } });
  try {
    const browser = new TestClient(server);
    for (let i = 0; i < 4; i++) expect((await browser.gql('{ me { id } }')).status).toBe(200);
    const r = await browser.gql('{ onlineUsers { id } }');
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(r.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
  } finally {
    await server.close();
  }
});
