/**
 * Security, round two (issue 15): each finding of the review, reproduced through the real
 * API against a real server, and shown closed.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { countDocuments, RawSocket } from '../helpers/raw-ws';
import { startServer, type TestServer } from '../helpers/server';

const SEND =
  'mutation($text: String!, $to: ID, $clientId: String) { sendMessage(input: { text: $text, to: $to, clientId: $clientId }) { id text recipient { id username } } }';
const HISTORY = 'query($with: ID) { messages(with: $with, last: 100) { edges { node { id text } } } }';
const PRESENCE_SUB = 'subscription { presenceChanged { online } }';

const logLines: string[] = [];
const logSink = new Writable({
  write(chunk, _enc, done) {
    logLines.push(...String(chunk).split('\n').filter(Boolean));
    done();
  },
});
const errorLogs = () =>
  logLines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);

let server: TestServer;
let db: Awaited<ReturnType<typeof openDb>>;
beforeAll(async () => {
  server = await startServer({
    logger: createLogger({ logLevel: 'info' }, logSink),
    // The pricing cases below are sized against this limit (the default is higher).
    env: { GRAPHQL_MAX_COST: '20000' },
  });
  db = await openDb(server.mongodbUri);
});
afterAll(async () => {
  await db.close();
  await server.close();
});

describe('resetIdentity (finding 1)', () => {
  test('two resetIdentity fields in one operation are refused before any identity is made', async () => {
    const browser = new TestClient(server);
    const me = await browser.me();
    const before = await countDocuments(db.db);
    for (const query of [
      'mutation { x: resetIdentity { id } y: resetIdentity { id } }',
      'mutation { ...R ...R2 } fragment R on Mutation { resetIdentity { id } } fragment R2 on Mutation { z: resetIdentity { id } }',
    ]) {
      const r = await browser.gql(query);
      expect(r.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(r.errors?.[0]?.message).toMatch(/resetIdentity may appear at most once per operation/);
      expect(r.data).toBeUndefined();
    }
    expect(await countDocuments(db.db)).toEqual(before);
    expect((await browser.me()).id).toBe(me.id);
  });
});

describe('document size (finding 2)', () => {
  const padded = `#${'x'.repeat(60 * 1024)}\n${PRESENCE_SUB}`;

  test('a 60 KB comment before a subscription is refused on both transports before parsing', async () => {
    const browser = new TestClient(server);
    const http = await browser.post(JSON.stringify({ query: `#${'x'.repeat(60 * 1024)}\n{ me { id } }` }));
    expect(http.status).toBe(400);
    const body = JSON.parse(http.text) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe('BAD_REQUEST');
    expect(body.errors[0].message).toMatch(/larger than 8192 bytes/);

    const ws = browser.ws();
    try {
      const sub = ws.subscribe(padded);
      await sub.ended();
      expect(JSON.stringify(sub.errors)).toMatch(/larger than 8192 bytes/);
      expect(server.services.realtime.stats().subscribers).toBe(0);
      // Just under the limit is an ordinary document.
      const ok = await ws.query(`#${'x'.repeat(8000)}\n{ me { id } }`);
      expect(ok.errors).toBeUndefined();
    } finally {
      await ws.close();
    }
  });

  test('distinct accepted subscriptions leave no plan behind once they complete', async () => {
    const browser = new TestClient(server);
    await browser.me();
    const raw = await RawSocket.open(server.wsUrl, { cookie: browser.cookie! });
    await raw.init();
    for (let i = 0; i < 40; i++) {
      const id = `s${i}`;
      raw.json({ id, type: 'subscribe', payload: { query: `#${i}${'p'.repeat(4000)}\n${PRESENCE_SUB}` } });
      await waitFor(() => server.services.realtime.stats().plans > 0, `plan of ${id}`);
      raw.json({ id, type: 'complete' });
      await waitFor(() => server.services.realtime.stats().subscribers === 0, `end of ${id}`);
    }
    expect(server.services.realtime.stats().plans).toBe(0);
    await raw.close();
  });
});

describe('repeated clientId and user ids (finding 5)', () => {
  test('a repeated clientId to another recipient is BAD_USER_INPUT and reveals nobody; to the same one it returns the stored recipient', async () => {
    const alice = new TestClient(server);
    const [bob, carol] = [new TestClient(server), new TestClient(server)];
    await alice.me();
    const [b, c] = [await bob.me(), await carol.me()];
    const first = await alice.data(SEND, { text: 'hi bob', to: b.id, clientId: 'k-1' });
    expect(first.sendMessage.recipient).toEqual({ id: b.id, username: b.username });

    const other = await alice.gql(SEND, { text: 'hi bob', to: c.id, clientId: 'k-1' });
    expect(other.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'clientId' });
    expect(JSON.stringify(other)).not.toContain(c.username);
    const lobby = await alice.gql(SEND, { text: 'hi bob', clientId: 'k-1' });
    expect(lobby.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const again = await alice.data(SEND, { text: 'hi bob', to: b.id, clientId: 'k-1' });
    expect(again.sendMessage).toEqual(first.sendMessage);
    expect(await db.db.collection('messages').countDocuments({ sender: (await alice.me()).id })).toBe(1);
  });

  test('new user ids are random, not a timestamp and a counter', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await new TestClient(server).me()).id);
    expect(ids.every((id) => /^[0-9a-f]{24}$/.test(id))).toBe(true);
    const now = Date.now() / 1000;
    // An ObjectId starts with its creation time in seconds; a random one almost never does.
    const timestampLike = ids.filter((id) => Math.abs(parseInt(id.slice(0, 8), 16) - now) < 86400 * 365);
    expect(timestampLike.length).toBeLessThan(3);
    // ... and ends with a counter that neighbouring ids share most digits of.
    const counters = ids.map((id) => parseInt(id.slice(18), 16));
    const consecutive = counters.filter((n, i) => i > 0 && Math.abs(n - counters[i - 1]) < 1000);
    expect(consecutive.length).toBeLessThan(3);
    expect(new Set(ids.map((id) => id.slice(8, 18))).size).toBe(ids.length);
  });
});

describe('subscriptions over HTTP (finding 6)', () => {
  test('are refused with 400 and a clear message, without an error log', async () => {
    const browser = new TestClient(server);
    await browser.me();
    const before = errorLogs().length;
    const r = await browser.post(JSON.stringify({ query: PRESENCE_SUB }));
    expect(r.status).toBe(400);
    const body = JSON.parse(r.text) as { errors: Array<{ message: string; extensions: Record<string, unknown> }> };
    expect(body.errors[0].message).toMatch(/Subscriptions are served over WebSocket only/);
    expect(body.errors[0].extensions).toEqual({ code: 'BAD_REQUEST' });
    expect(r.text).not.toMatch(/stacktrace|INTERNAL_SERVER_ERROR/);
    expect(errorLogs().slice(before)).toEqual([]);
  });
});

describe('list sizes and cost with variables (finding 7)', () => {
  test('onlineUsers and conversations take no arguments, as the contract says, and are capped (at 200)', async () => {
    const browser = new TestClient(server);
    await browser.me();
    const sockets = await Promise.all(
      [0, 1, 2]
        .map(() => new TestClient(server))
        .map(async (c) => {
          await c.me();
          const ws = c.ws();
          await ws.connected();
          return ws;
        }),
    );
    try {
      await waitFor(async () => (await browser.data('{ onlineUsers { id } }')).onlineUsers.length >= 3, '3 online');
      expect(await browser.errorCode('{ onlineUsers(first: 2) { id } }')).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(await browser.errorCode('{ conversations(first: 5) { unreadCount } }')).toBe('GRAPHQL_VALIDATION_FAILED');
      expect((await browser.data('{ conversations { unreadCount } }')).conversations).toEqual([]);
    } finally {
      await Promise.all(sockets.map((ws) => ws.close()));
    }
  });

  test('list fields are priced by their size, given as a literal, a variable, a default, or not at all', async () => {
    const browser = new TestClient(server);
    const fields = 'edges { node { id text sender { id username avatarUrl } } }';
    const page = (arg: string) =>
      Array.from({ length: 6 }, (_, i) => `p${i}: messages(${arg}) { ${fields} }`).join(' ');
    const cases: Array<[string, Record<string, unknown> | undefined]> = [
      [`query($n: Int) { ${page('last: $n')} }`, { n: 100 }],
      [`query($n: Int = 100) { ${page('first: $n')} }`, undefined],
      [
        `{ ${Array.from({ length: 15 }, (_, i) => `u${i}: onlineUsers { id username avatarUrl online lastSeenAt }`).join(' ')} }`,
        undefined,
      ],
    ];
    for (const [query, variables] of cases) {
      const http = await browser.gql(query, variables);
      expect(http.status).toBe(400);
      expect(http.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(http.errors?.[0]?.message).toMatch(/Cost limit of 20000 exceeded/);
      const ws = browser.ws();
      try {
        const r = await ws.query(query, variables);
        expect(r.errors?.[0]?.message).toBe(http.errors?.[0]?.message);
      } finally {
        await ws.close();
      }
    }
    // The same documents with small sizes pass.
    expect((await browser.gql(cases[0][0], { n: 2 })).errors).toBeUndefined();
  });
});

describe('text hygiene (finding 10)', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['a lone surrogate', 'ab\ud800cd', /not well-formed/],
    ['only zero-width spaces', '\u200b\u200b\u200b', /visible character/],
    ['only bidi overrides', '\u202e\u2066', /must not be empty|visible character/],
    ['only a line separator', '\u2028', /must not be empty/],
    ['a Hangul filler', '\u3164', /visible character/],
    ['1,999 combining marks on one letter', `a${'\u0301'.repeat(1999)}`, /combining marks/],
  ];
  test.each(refused)('%s is BAD_USER_INPUT over HTTP and WebSocket, and stores nothing', async (_n, text, message) => {
    const browser = new TestClient(server);
    await browser.me();
    const before = await countDocuments(db.db);
    const http = await browser.gql(SEND, { text });
    expect(http.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'text' });
    expect(http.errors?.[0]?.message).toMatch(message);
    const ws = browser.ws();
    try {
      const r = await ws.query(SEND, { text });
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'text' });
    } finally {
      await ws.close();
    }
    expect(await countDocuments(db.db)).toEqual(before);
  });

  test('text is stored and sent live exactly as history shows it: NFC, bidi controls removed, emoji kept', async () => {
    const [alice, bob] = [new TestClient(server), new TestClient(server)];
    await alice.me();
    const b = await bob.me();
    const ws = bob.ws();
    try {
      const a = await alice.me();
      const sub = ws.subscribe<{ messageAdded: { text: string } }>(
        'subscription($with: ID) { messageAdded(with: $with) { text } }',
        {
          with: a.id,
        },
      );
      await ws.connected();
      await waitFor(() => server.services.realtime.stats().subscribers > 0, 'subscribed');
      const input = 'Cafe\u0301 \u202eevil\u202c 1\ufe0f\u20e3 👨‍👩‍👧 Tiê\u0309ng\u2028next';
      const expected = 'Café evil 1\ufe0f\u20e3 👨‍👩‍👧 Tiểng\nnext';
      const sent = await alice.data(SEND, { text: input, to: b.id });
      expect(sent.sendMessage.text).toBe(expected);
      const [live] = await sub.waitForCount(1);
      expect(live.messageAdded.text).toBe(expected);
      const history = await bob.data(HISTORY, { with: a.id });
      expect(history.messages.edges.map((e: { node: { text: string } }) => e.node.text)).toEqual([expected]);
    } finally {
      await ws.close();
    }
  });

  test('a lone surrogate in clientId is BAD_USER_INPUT', async () => {
    const browser = new TestClient(server);
    const r = await browser.gql(SEND, { text: 'ok', clientId: 'k\udc00' });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'clientId' });
  });
});

describe('echoed headers (finding 11)', () => {
  test('a 415 answer has a fixed text that quotes nothing from the request', async () => {
    const browser = new TestClient(server);
    const r = await browser.post('{"query":"{ me { id } }"}', {
      'content-type': 'application/json; charset="<SCRIPT>X"',
    });
    expect(r.status).toBe(415);
    expect(r.text).not.toMatch(/SCRIPT/i);
    expect(JSON.parse(r.text).errors[0].message).toBe(
      'Unsupported content type or charset (send application/json in UTF-8)',
    );
  });

  test('X-Request-Id is kept only when it is a short token of safe characters', async () => {
    const browser = new TestClient(server);
    const id = async (value: string) =>
      (await browser.post('{"query":"{ me { id } }"}', { 'x-request-id': value })).headers.get('x-request-id');
    expect(await id('req-1234.abcd_EF')).toBe('req-1234.abcd_EF');
    for (const bad of ['<script>alert(1)</script>', 'a'.repeat(65), 'abc:def:ghi"', 'short']) {
      const got = await id(bad);
      expect(got).not.toBe(bad);
      expect(got).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('found by the fuzzer', () => {
  test('an id completed while its subscription is being set up and reused at once closes the connection (4409) and leaves no orphaned subscription', async () => {
    const browser = new TestClient(server);
    await browser.me();
    await browser.data(SEND, { text: 'something to replay' });
    const raw = await RawSocket.open(server.wsUrl, { cookie: browser.cookie! });
    await raw.init();
    for (let i = 0; i < 10; i++) {
      // The replay's set-up reads the database; the query with the same id reads it longer and
      // ends after the subscription was registered under the id.
      const id = `x${i}`;
      raw.json({ id, type: 'subscribe', payload: { query: 'subscription { messageAdded(after: "bTA") { id } }' } });
      raw.json({ id, type: 'complete' });
      raw.json({
        id,
        type: 'subscribe',
        payload: { query: '{ a: messages(last: 50) { edges { node { id } } } b: conversations { unreadCount } }' },
      });
    }
    // Reusing an id before its operation ended is a protocol error, as for an id in use.
    expect((await raw.closeCode()).code).toBe(4409);
    // (With graphql-ws alone, the query's end unregisters the id the subscription had taken: it is never ended.)
    expect(server.services.realtime.stats()).toMatchObject({ subscribers: 0, plans: 0 });
  });

  test.each([
    ['@skip with a variable', 'subscription($x: Boolean!) { presenceChanged @skip(if: $x) { online } }'],
    ['@include without its if', 'subscription { presenceChanged @include { online } }'],
    ['@skip with a string for if', 'subscription { presenceChanged @skip(if: "no") { online } }'],
  ])(
    'a subscription whose root field has %s is a validation error on both transports, not a crash',
    async (_, query) => {
      const browser = new TestClient(server);
      await browser.me();
      const before = errorLogs().length;
      const http = await browser.gql(query, { x: false });
      expect(http.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      const consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const raw = await RawSocket.open(server.wsUrl, { cookie: browser.cookie! });
        await raw.init();
        raw.json({ id: '1', type: 'subscribe', payload: { query, variables: { x: false } } });
        const error = await raw.next((m) => m.type === 'error');
        expect(JSON.stringify(error.payload)).toMatch(/GRAPHQL_VALIDATION_FAILED/);
        expect(raw.open).toBe(true);
        expect(consoleError).not.toHaveBeenCalled();
        await raw.close();
      } finally {
        consoleError.mockRestore();
      }
      expect(errorLogs().slice(before)).toEqual([]);
    },
  );

  test.each(['connection_ack', 'next', 'error'])(
    'a client frame of the server-only type %s closes the socket with 4400, not 4500 and a logged stack',
    async (type) => {
      const consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const raw = await RawSocket.open(server.wsUrl);
        await raw.init();
        raw.json({ id: '1', type, payload: {} });
        expect(await raw.closeCode()).toEqual({ code: 4400, reason: 'Invalid message received' });
        expect(consoleError).not.toHaveBeenCalled();
      } finally {
        consoleError.mockRestore();
      }
    },
  );
});

describe('metrics (finding 8)', () => {
  test('/metrics is not served on the public port; the metrics listener is on loopback', async () => {
    const res = await fetch(server.url.replace(/\/graphql$/, '/metrics'));
    expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/plain; version=/);
    expect(await res.text()).not.toMatch(/anonymo_websocket_connections/);
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const metrics = await fetch(server.metricsUrl!);
    expect(await metrics.text()).toMatch(/anonymo_websocket_connections/);
  });

  test('operation names that clients invent are labelled "other"', async () => {
    const browser = new TestClient(server);
    for (let i = 0; i < 5; i++) await browser.data(`query Invented${i} { me { id } }`);
    await browser.data('query Me { me { id } }');
    const text = await (await fetch(server.metricsUrl!)).text();
    expect(text).not.toMatch(/name="Invented/);
    expect(text).toMatch(
      /anonymo_graphql_operation_duration_seconds_count\{type="query",name="other",transport="http"\} [5-9]/,
    );
    expect(text).toMatch(/name="Me",transport="http"/);
  });
});

async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
