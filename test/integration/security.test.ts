import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { countDocuments, RawSocket, upgrade } from '../helpers/raw-ws';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server';
import { ensureBuilt } from '../helpers/process';
import { waitFor } from '../helpers/wait';

const EVIL = 'https://evil.example';
const LOBBY_SUB = 'subscription { messageAdded { id text sender { id } } }';
const SEND =
  'mutation($text: String!, $to: ID, $clientId: String) { sendMessage(input: { text: $text, to: $to, clientId: $clientId }) { id text } }';

describe('with the default (test) configuration', () => {
  let server: TestServer;
  let db: Awaited<ReturnType<typeof openDb>>;
  beforeAll(async () => {
    server = await startServer({ env: { ALLOWED_ORIGINS: 'https://app.example, https://other.example:8443' } });
    db = await openDb(server.mongodbUri);
  });
  afterAll(async () => {
    await db.close();
    await server.close();
  });

  describe('cross-site WebSocket hijacking', () => {
    test('a page on a foreign origin cannot open a subscription with the victim’s cookie', async () => {
      const victim = new TestClient(server);
      const me = await victim.me();
      const before = server.services.realtime.stats().subscribers;

      // What the attacker's page makes the victim's browser do: the cookie rides along, the
      // Origin header is the attacker's.
      const attacker = new TestClient(server, { origin: EVIL });
      attacker.cookie = victim.cookie;
      const hijack = attacker.ws();
      const sub = hijack.subscribe(LOBBY_SUB);
      await sub.ended();
      expect(hijack.upgradeResponse).toBeUndefined();
      const raw = await upgrade(server.wsUrl, { cookie: victim.cookie!, origin: EVIL });
      expect(raw.status).toBe(403);
      expect(raw.ws).toBeUndefined();

      // The victim's own messages never reach the attacker, no subscription was started and
      // no connection of the victim was registered. A reader on the server's own origin is the
      // sync point: once it has the message, every lobby subscriber has been sent it.
      const reader = new TestClient(server);
      await reader.me();
      const readerWs = reader.ws();
      const readerSub = readerWs.subscribe(LOBBY_SUB);
      await waitFor(() => server.services.realtime.stats().subscribers === before + 1, { what: 'the reader' });
      const sent = (await victim.data(SEND, { text: 'private to the lobby readers' })).sendMessage;
      await readerSub.waitFor((items) => items.some((i) => i.messageAdded.id === sent.id));
      expect(sub.items).toEqual([]);
      // The reader's is the only subscription added.
      expect(server.services.realtime.stats().subscribers).toBe(before + 1);
      await readerWs.close();
      expect(server.services.presence.isOnline(me.id)).toBe(false);
      await hijack.close();
    });

    test('the same cookie opens a subscription from the server’s own origin, an allowed origin, localhost, or without Origin', async () => {
      const victim = new TestClient(server);
      const me = await victim.me();
      const own = new URL(server.url).origin;
      for (const origin of [
        own,
        'https://app.example',
        'https://other.example:8443',
        'http://localhost:3000',
        undefined,
      ]) {
        const r = await upgrade(server.wsUrl, { cookie: victim.cookie!, ...(origin ? { origin } : {}) });
        expect([origin, r.status]).toEqual([origin, 101]);
        const raw = new RawSocket(r.ws!);
        await raw.init();
        raw.json({ id: '1', type: 'subscribe', payload: { query: '{ me { id } }' } });
        const next = await raw.next((m) => m.type === 'next');
        expect(next.payload).toEqual({ data: { me: { id: me.id } } });
        await raw.close();
      }
    });

    test('foreign, malformed and look-alike origins are refused before any session or identity exists', async () => {
      const before = await countDocuments(db.db);
      for (const origin of [
        EVIL,
        'null',
        'https://app.example.evil.example',
        'http://localhost.evil.example',
        'https://app.example:444',
        'http://app.example',
        'javascript:alert(1)',
        'https://user@app.example',
      ]) {
        const r = await upgrade(server.wsUrl, { origin });
        expect([origin, r.status]).toEqual([origin, 403]);
        expect(r.headers['set-cookie']).toBeUndefined();
      }
      expect(await countDocuments(db.db)).toEqual(before);
    });
  });

  describe('CORS and CSRF on HTTP', () => {
    test('an allowed origin gets CORS with credentials; a foreign one is refused with FORBIDDEN and no CORS headers', async () => {
      const preflight = await fetch(server.url, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');

      const allowed = new TestClient(server, { origin: 'https://app.example' });
      const ok = await allowed.gql('{ me { id } }');
      expect(ok.errors).toBeUndefined();
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');

      const before = await countDocuments(db.db);
      const foreign = new TestClient(server, { origin: EVIL });
      const r = await foreign.post(JSON.stringify({ query: '{ me { id } }' }));
      expect(r.status).toBe(403);
      expect(JSON.parse(r.text).errors[0].extensions.code).toBe('FORBIDDEN');
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      expect(r.headers.get('set-cookie')).toBeNull();
      expect(await countDocuments(db.db)).toEqual(before);
    });

    test('GraphQL answers are never cacheable (Cache-Control: no-store), with data or with errors', async () => {
      const client = new TestClient(server);
      const ok = await client.gql('{ me { id } }');
      expect(ok.errors).toBeUndefined();
      expect(ok.headers.get('cache-control')).toBe('no-store');
      const failed = await client.gql('{ nosuchfield }');
      expect(failed.errors).toBeDefined();
      expect(failed.headers.get('cache-control')).toBe('no-store');
    });

    test('Apollo’s CSRF prevention refuses simple requests (text/plain POST, GET without a preflight header)', async () => {
      const browser = new TestClient(server);
      await browser.me();
      const before = await countDocuments(db.db);
      const plain = await browser.post(
        JSON.stringify({ query: 'mutation { sendMessage(input: { text: "csrf" }) { id } }' }),
        {
          'content-type': 'text/plain',
        },
      );
      expect(plain.status).toBe(400);
      expect(plain.text).toMatch(/CSRF/i);
      const get = await fetch(`${server.url}?query=${encodeURIComponent('{ me { id } }')}`, {
        headers: { cookie: browser.cookie! },
      });
      expect(get.status).toBe(400);
      expect(await get.text()).toMatch(/CSRF/i);
      expect(await countDocuments(db.db)).toEqual(before);
    });
  });

  describe('operation limits apply to HTTP and WebSocket alike', () => {
    const deepType = `{ __type(name: "Query") { fields { type { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } } }`;
    const cases: Array<[string, string, string, RegExp]> = [
      ['depth', deepType, 'GRAPHQL_VALIDATION_FAILED', /depth limit of 10 exceeded/],
      [
        'aliases',
        `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: me { id }`).join(' ')} }`,
        'GRAPHQL_VALIDATION_FAILED',
        /Aliases limit of 15 exceeded/i,
      ],
      [
        'directives',
        `{ me { id ${'@include(if: true) '.repeat(11)} } }`,
        'GRAPHQL_VALIDATION_FAILED',
        /Directives limit of 10 exceeded/i,
      ],
      [
        'cost',
        `{ ${Array.from({ length: 12 }, (_, i) => `p${i}: messages(last: 100) { edges { node { id text sender { id username avatarUrl } } } }`).join(' ')} }`,
        'GRAPHQL_VALIDATION_FAILED',
        /Cost limit of 40000 exceeded/i,
      ],
      // graphql-js's own message says "more that".
      ['tokens', `{ me { ${'id '.repeat(1000)} } }`, 'GRAPHQL_PARSE_FAILED', /contains more th.. 1000 tokens/],
    ];
    test.each(cases)('%s', async (_name, query, code, message) => {
      const browser = new TestClient(server);
      const http = await browser.gql(query);
      expect(http.errors?.[0]?.extensions?.code).toBe(code);
      expect(http.errors?.[0]?.message).toMatch(message);
      expect(http.data).toBeUndefined();
      const ws = browser.ws();
      try {
        const r = await ws.query(query);
        expect(r.errors?.[0]?.extensions?.code).toBe(code);
        expect(r.errors?.[0]?.message).toBe(http.errors?.[0]?.message);
      } finally {
        await ws.close();
      }
    });

    test('the operations of the web client, and a full page with literal arguments, stay within every limit', async () => {
      const browser = new TestClient(server);
      const ops = readFileSync(path.resolve(__dirname, '../../web/src/graphql/operations.graphql'), 'utf8');
      for (const operationName of ['Me', 'Messages', 'OnlineUsers']) {
        const r = await browser.post(JSON.stringify({ query: ops, operationName, variables: { last: 100 } }));
        expect([operationName, JSON.parse(r.text).errors]).toEqual([operationName, undefined]);
      }
      const page = await browser.gql(
        `query { messages(last: 100) { edges { cursor node { id text createdAt readAt clientId cursor mine sender { id username avatarUrl online lastSeenAt } recipient { id } } } pageInfo { hasPreviousPage hasNextPage startCursor endCursor } } }`,
      );
      expect(page.errors).toBeUndefined();
    });
  });

  describe('size limits', () => {
    test('an HTTP body over 64 KiB gets 413 BAD_REQUEST and the server keeps answering', async () => {
      const browser = new TestClient(server);
      await browser.me();
      const r = await browser.post(
        JSON.stringify({ query: '{ me { id } }', variables: { pad: 'x'.repeat(64 * 1024) } }),
      );
      expect(r.status).toBe(413);
      expect(JSON.parse(r.text).errors[0].extensions.code).toBe('BAD_REQUEST');
      expect((await browser.me()).id).toMatch(/^[0-9a-f]{24}$/);
    });

    test('a WebSocket frame over 64 KiB closes the connection with 1009; one just under it is processed', async () => {
      const browser = new TestClient(server);
      await browser.me();
      const ok = await RawSocket.open(server.wsUrl, { cookie: browser.cookie! });
      await ok.init();
      const frame = (pad: number) =>
        JSON.stringify({
          id: 'a',
          type: 'subscribe',
          payload: { query: '{ me { id } }', variables: { pad: 'x'.repeat(pad) } },
        });
      const fits = frame(0).length;
      ok.send(frame(64 * 1024 - fits - 10));
      expect((await ok.next((m) => m.type === 'next')).payload).toMatchObject({ data: { me: {} } });
      await ok.close();

      const big = await RawSocket.open(server.wsUrl, { cookie: browser.cookie! });
      await big.init();
      big.send(frame(64 * 1024));
      expect((await big.closeCode()).code).toBe(1009);
    });

    test('text over 2000 characters and clientId over 64 are BAD_USER_INPUT and store nothing; the limits themselves pass', async () => {
      const browser = new TestClient(server);
      await browser.me();
      const before = await countDocuments(db.db);
      const long = await browser.gql(SEND, { text: 'x'.repeat(2001) });
      expect(long.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'text' });
      const id = await browser.gql(SEND, { text: 'hi', clientId: 'k'.repeat(65) });
      expect(id.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'clientId' });
      expect(await countDocuments(db.db)).toEqual(before);
      const atLimit = await browser.data(SEND, { text: '😀'.repeat(2000), clientId: 'k'.repeat(64) });
      expect([...atLimit.sendMessage.text]).toHaveLength(2000);
    });

    test('control characters other than newline and tab are removed from stored text', async () => {
      const browser = new TestClient(server);
      const sent = await browser.data(SEND, { text: 'a\u0000b\u0007c\u001b[31md\r\ne\tf\u007f\u0085g\u200d' });
      expect(sent.sendMessage.text).toBe('abc[31md\ne\tfg\u200d');
      const stored = await db.db
        .collection<{ _id: string; text: string }>('messages')
        .findOne({ _id: sent.sendMessage.id });
      expect(stored?.text).toBe('abc[31md\ne\tfg\u200d');
    });
  });

  describe('input hygiene', () => {
    test('operator-shaped values never reach a query: they are BAD_USER_INPUT and nothing changes', async () => {
      const browser = new TestClient(server);
      await browser.me();
      const before = await countDocuments(db.db);
      expect(
        await browser.errorCode('query($w: ID) { messages(with: $w) { edges { cursor } } }', { w: { $ne: null } }),
      ).toBe('BAD_USER_INPUT');
      expect(
        await browser.errorCode('query($w: ID) { messages(with: $w) { edges { cursor } } }', { w: '{"$gt":""}' }),
      ).toBe('BAD_USER_INPUT');
      expect(
        await browser.errorCode('query($a: String) { messages(after: $a) { edges { cursor } } }', { a: { $gt: '' } }),
      ).toBe('BAD_USER_INPUT');
      expect(await browser.errorCode(SEND, { text: 'x', to: { $gt: '' } })).toBe('BAD_USER_INPUT');
      expect(await browser.errorCode(SEND, { text: 'x', to: 'ffffffffffffffffffffffff' })).toBe('BAD_USER_INPUT');
      expect(await countDocuments(db.db)).toEqual(before);
    });

    test('operator-shaped text and clientId are stored as given, as plain strings', async () => {
      const browser = new TestClient(server);
      const sent = await browser.data(SEND, { text: '{"$gt":""}', clientId: '{"$ne":null}' });
      const stored = await db.db.collection<{ _id: string }>('messages').findOne({ _id: sent.sendMessage.id });
      expect(stored).toMatchObject({ text: '{"$gt":""}', clientId: '{"$ne":null}' });
      // The retry with the same key finds that one message, not "any message".
      const again = await browser.data(SEND, { text: 'other', clientId: '{"$ne":null}' });
      expect(again.sendMessage.id).toBe(sent.sendMessage.id);
      const fresh = await browser.data(SEND, { text: 'third', clientId: 'plain-key' });
      expect(fresh.sendMessage.id).not.toBe(sent.sendMessage.id);
    });

    test('a session whose identity was reset gets a new identity under a new session id', async () => {
      const browser = new TestClient(server);
      const me = await browser.me();
      const oldCookie = browser.cookie!;
      const sid = (cookie: string) => decodeURIComponent(cookie.split('=')[1]).slice(2).split('.')[0];
      await db.db.collection('users').deleteOne({ username: me.username });
      server.services.users.forget(me.id);

      const r = await browser.gql<{ me: { id: string } }>('{ me { id } }');
      expect(r.errors).toBeUndefined();
      expect(r.data!.me.id).not.toBe(me.id);
      expect(browser.cookie).not.toBe(oldCookie);
      expect(sid(browser.cookie!)).not.toBe(sid(oldCookie));
      expect(await db.db.collection('sessions').countDocuments({ _id: sid(oldCookie) } as never)).toBe(0);
      expect((await browser.me()).id).toBe(r.data!.me.id);
    });
  });
});

describe('rate limits', () => {
  test('sendMessage: per user, then per address; the excess is RATE_LIMITED with a retry hint and stores nothing', async () => {
    const server = await startServer({
      env: { RATE_LIMIT_SEND_MESSAGE: '3/60s', RATE_LIMIT_SEND_MESSAGE_IP: '5/60s' },
    });
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const a = new TestClient(server);
      for (let i = 0; i < 3; i++) await a.data(SEND, { text: `m${i}` });
      const over = await a.gql(SEND, { text: 'one too many' });
      expect(over.status).toBe(200);
      expect(over.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      const retry = over.errors![0].extensions!.retryAfterMs as number;
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(60000);
      expect(over.errors![0].message).toMatch(/Too many messages/);
      expect(await db.collection('messages').countDocuments()).toBe(3);
      // Reading still works for the limited user.
      expect((await a.me()).id).toMatch(/^[0-9a-f]{24}$/);

      // A second user behind the same address: own budget, but the address's is nearly spent
      // (3 sent + 1 refused by a): one more passes, then the address is limited.
      const b = new TestClient(server);
      await b.data(SEND, { text: 'b1' });
      expect(await b.errorCode(SEND, { text: 'b2' })).toBe('RATE_LIMITED');
      expect(await db.collection('messages').countDocuments()).toBe(4);
    } finally {
      await close();
      await server.close();
    }
  });

  test('over WebSocket the excess gets RATE_LIMITED and the socket stays open', async () => {
    const server = await startServer({ env: { RATE_LIMIT_SEND_MESSAGE: '2/60s', RATE_LIMIT_WS_OPERATIONS: '6/60s' } });
    try {
      const browser = new TestClient(server);
      await browser.me();
      const ws = browser.ws();
      const sub = ws.subscribe(LOBBY_SUB);
      expect((await ws.query(SEND, { text: 'w1' })).data).toBeDefined();
      expect((await ws.query(SEND, { text: 'w2' })).data).toBeDefined();
      const over = await ws.query(SEND, { text: 'w3' });
      expect(over.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      // Operations on the connection: 1 subscription + 3 sends = 4; two more pass, then the
      // connection's operation budget is spent.
      expect((await ws.query('{ me { id } }')).data?.me.id).toMatch(/^[0-9a-f]{24}$/);
      expect((await ws.query('{ me { id } }')).data?.me.id).toMatch(/^[0-9a-f]{24}$/);
      const tooMany = await ws.query('{ me { id } }');
      expect(tooMany.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      expect(tooMany.errors?.[0]?.extensions?.retryAfterMs).toBeGreaterThan(0);
      expect(ws.closes).toEqual([]);
      // The subscription opened before the limit still delivers.
      await new TestClient(server).data(SEND, { text: 'from someone else' });
      await sub.waitFor((items) => items.some((i) => i.messageAdded.text === 'from someone else'));
      await ws.close();
    } finally {
      await server.close();
    }
  });

  test('identity creation per address with POW_MODE=off: HTTP gets RATE_LIMITED (429), a WebSocket upgrade 429, and no user is created', async () => {
    const server = await startServer({ env: { RATE_LIMIT_IDENTITIES_IP: '2/60s', POW_MODE: 'off' } });
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const first = new TestClient(server);
      await first.me();
      await new TestClient(server).me();
      expect(await db.collection('users').countDocuments()).toBe(2);

      const r = await new TestClient(server).gql('{ me { id } }');
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(r.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      expect(r.errors?.[0]?.extensions?.retryAfterMs).toBeGreaterThan(0);
      expect(r.headers.get('set-cookie')).toBeNull();

      const up = await upgrade(server.wsUrl);
      expect(up.status).toBe(429);
      expect(up.headers['retry-after']).toMatch(/^\d+$/);
      expect(await db.collection('users').countDocuments()).toBe(2);
      expect(await db.collection('sessions').countDocuments()).toBe(2);

      // Existing identities are unaffected, over HTTP and WebSocket.
      expect((await first.me()).id).toMatch(/^[0-9a-f]{24}$/);
      const ok = await upgrade(server.wsUrl, { cookie: first.cookie! });
      expect(ok.status).toBe(101);
      ok.ws!.close();
    } finally {
      await close();
      await server.close();
    }
  });

  test('new WebSocket connections per address: the excess upgrade gets 429 with Retry-After before the session is read', async () => {
    const server = await startServer({ env: { RATE_LIMIT_WS_CONNECTIONS_IP: '3/60s' } });
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const browser = new TestClient(server);
      await browser.me();
      const open = [];
      for (let i = 0; i < 3; i++) open.push(await upgrade(server.wsUrl, { cookie: browser.cookie! }));
      expect(open.map((r) => r.status)).toEqual([101, 101, 101]);
      const users = await db.collection('users').countDocuments();
      const refused = await upgrade(server.wsUrl);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect(await db.collection('users').countDocuments()).toBe(users);
      // HTTP is not affected by the WebSocket budget.
      expect((await browser.me()).id).toMatch(/^[0-9a-f]{24}$/);
      open.forEach((r) => r.ws!.close());
    } finally {
      await close();
      await server.close();
    }
  });

  test('RATE_LIMITS=off disables the rate limiters (load tests) but not the size limits', async () => {
    const server = await startServer({
      env: {
        RATE_LIMITS: 'off',
        RATE_LIMIT_SEND_MESSAGE: '1/60s',
        RATE_LIMIT_IDENTITIES_IP: '1/60s',
        RATE_LIMIT_WS_CONNECTIONS_IP: '1/60s',
      },
    });
    try {
      const browser = new TestClient(server);
      for (let i = 0; i < 3; i++) await browser.data(SEND, { text: `m${i}` });
      for (let i = 0; i < 2; i++) await new TestClient(server).me();
      const sockets = [await upgrade(server.wsUrl), await upgrade(server.wsUrl)];
      expect(sockets.map((s) => s.status)).toEqual([101, 101]);
      sockets.forEach((s) => s.ws!.close());
      expect(await browser.errorCode(SEND, { text: 'x'.repeat(2001) })).toBe('BAD_USER_INPUT');
    } finally {
      await server.close();
    }
  });
});

describe('production mode', () => {
  const PROD = { NODE_ENV: 'production', SESSION_SECRET: TEST_SECRET, TRUST_PROXY: 'loopback' };
  let prod: TestServer;
  let dev: TestServer;
  beforeAll(async () => {
    [prod, dev] = await Promise.all([startServer({ env: PROD }), startServer()]);
  });
  afterAll(async () => {
    await Promise.all([prod.close(), dev.close()]);
  });

  test('the session cookie is Secure and HttpOnly (behind a TLS proxy)', async () => {
    const browser = new TestClient(prod, { headers: { 'x-forwarded-proto': 'https' } });
    const r = await browser.gql('{ me { id } }');
    const setCookie = r.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^anonymo\.sid=/);
    expect(setCookie).toMatch(/;\s*Secure/i);
    expect(setCookie).toMatch(/;\s*HttpOnly/i);
    // Over plain HTTP a secure cookie is never sent.
    expect((await new TestClient(prod).gql('{ me { id } }')).headers.get('set-cookie')).toBeNull();
  });

  test('an internal error carries no stack trace (development shows one)', async () => {
    const query = '{ messages { edges { node { id sender { id } } } } }';
    for (const [server, hasStack] of [
      [prod, false],
      [dev, true],
    ] as const) {
      const { db, close } = await openDb(server.mongodbUri);
      try {
        // A message whose sender does not exist makes the sender resolver fail: a bug path.
        await db.collection<{ _id: string }>('messages').insertOne({
          _id: 'lobby:000000000001',
          conversation: 'lobby',
          seq: 1,
          text: 'orphan',
          sender: 'ffffffffffffffffffffffff',
          recipient: null,
          clientId: null,
          createdAt: new Date(),
          readAt: null,
        } as never);
      } finally {
        await close();
      }
      const r = await new TestClient(server, { headers: { 'x-forwarded-proto': 'https' } }).gql(query);
      const error = r.errors![0];
      expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(error.message).toBe('Internal server error');
      expect('stacktrace' in (error.extensions ?? {})).toBe(hasStack);
      expect(JSON.stringify(r)).not.toMatch(hasStack ? /$^/ : /at .*\.ts:\d+|unknown sender/);
    }
  });

  test('validation errors carry no field suggestions (development shows them)', async () => {
    const prodError = (await new TestClient(prod).gql('{ mee { id } }')).errors![0];
    const devError = (await new TestClient(dev).gql('{ mee { id } }')).errors![0];
    expect(devError.message).toMatch(/Did you mean "me"\?/);
    expect(prodError.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(prodError.message).toBe('Cannot query field "mee" on type "Query".');
    expect(JSON.stringify(prodError)).not.toMatch(/stacktrace|Did you mean/);

    const browser = new TestClient(prod);
    await browser.gql('{ me { id } }');
    const ws = browser.ws();
    try {
      const r = await ws.query('{ me { usernam } }');
      expect(r.errors?.[0]?.message).toBe('Cannot query field "usernam" on type "User".');
    } finally {
      await ws.close();
    }
  });

  test('introspection is off in production unless GRAPHQL_INTROSPECTION=true', async () => {
    const q = '{ __schema { queryType { name } } }';
    const off = await new TestClient(prod).gql(q);
    expect(off.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const on = await startServer({ env: { ...PROD, GRAPHQL_INTROSPECTION: 'true' } });
    try {
      expect((await new TestClient(on).data(q)).__schema.queryType.name).toBe('Query');
    } finally {
      await on.close();
    }
  });

  test('localhost origins are refused in production (allowed only in development and test)', async () => {
    expect((await upgrade(prod.wsUrl, { origin: 'http://localhost:3000' })).status).toBe(403);
    expect(
      (await new TestClient(prod, { origin: 'http://localhost:3000' }).post('{"query":"{ me { id } }"}')).status,
    ).toBe(403);
    const own = await upgrade(prod.wsUrl, { origin: new URL(prod.url).origin });
    expect(own.status).toBe(101);
    own.ws!.close();
  });
});

describe('the server process', () => {
  const root = path.resolve(__dirname, '..', '..');
  // The compiled server, exactly what `npm start` runs.
  beforeAll(() => ensureBuilt());
  const run = (env: Record<string, string>) => {
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        PORT: '0',
        // A free metrics port too: the default (9464) may be held by another server on the machine.
        METRICS_PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, output: () => output };
  };

  test('refuses to start in production without SESSION_SECRET (exit 78), and starts with one', async () => {
    const without = run({ NODE_ENV: 'production' });
    expect(await without.exited).toBe(78);
    expect(without.output()).toMatch(/SESSION_SECRET: required when NODE_ENV=production/);

    const short = run({ NODE_ENV: 'production', SESSION_SECRET: 'too-short' });
    expect(await short.exited).toBe(78);
    expect(short.output()).toMatch(/SESSION_SECRET must be at least 32 characters/);

    // The same command with a secret gets as far as listening (against the test database).
    const uri = new URL(process.env.ANONYMO_TEST_MONGODB_URI!);
    uri.pathname = '/proc_start';
    const ok = run({ NODE_ENV: 'production', SESSION_SECRET: TEST_SECRET, MONGODB_URI: uri.toString() });
    await waitFor(() => /Anonymo listening/.test(ok.output()) || ok.child.exitCode !== null, {
      timeout: 25000,
      interval: 50,
      what: 'the server to listen',
    });
    expect(ok.output()).toMatch(/Anonymo listening/);
    ok.child.kill('SIGTERM');
    expect(await ok.exited).toBe(0);
  }, 40000);
});
