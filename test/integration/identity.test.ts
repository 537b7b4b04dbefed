import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { upgrade } from '../helpers/raw-ws';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

describe('anonymous identity', () => {
  test('a browser without a cookie gets a new identity and an httpOnly anonymo.sid cookie', async () => {
    const browser = new TestClient(server);
    const r = await browser.gql<{
      me: { id: string; username: string; avatarUrl: string; online: boolean; createdAt: string };
    }>('{ me { id username avatarUrl online createdAt lastSeenAt } }');
    expect(r.errors).toBeUndefined();
    const me = r.data!.me;
    expect(me.id).toMatch(/^[0-9a-f]{24}$/);
    expect(me.username).toMatch(/^[A-Z][a-z]+[A-Z][a-z]+\d+$/);
    expect(me.avatarUrl).toBe(`/avatars/${me.username}.svg`);
    expect(Date.now() - Date.parse(me.createdAt)).toBeLessThan(60000);
    const setCookie = r.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^anonymo\.sid=s%3A/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);
  });

  test('the identity is stable for the same cookie and distinct across browsers', async () => {
    const a = new TestClient(server);
    const b = new TestClient(server);
    const a1 = await a.me();
    const a2 = await a.me();
    const b1 = await b.me();
    expect(a2).toEqual(a1);
    expect(b1.id).not.toBe(a1.id);
    expect(b1.username).not.toBe(a1.username);
  });

  test('the identity and its session are stored in MongoDB', async () => {
    const a = new TestClient(server);
    const me = await a.me();
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const user = await db.collection('users').findOne({ username: me.username });
      expect(user?._id.toString()).toBe(me.id);
      const sid = decodeURIComponent(a.cookie!.split('=')[1]).slice(2).split('.')[0];
      const session = await db.collection<{ _id: string; session: string }>('sessions').findOne({ _id: sid });
      expect(JSON.parse(session!.session).userId).toBe(me.id);
    } finally {
      await close();
    }
  });

  test('a forged or unknown cookie gets a fresh identity, not an error', async () => {
    const a = new TestClient(server);
    a.cookie = 'anonymo.sid=s%3Aforged.signature';
    const r = await a.gql<{ me: { id: string } }>('{ me { id } }');
    expect(r.errors).toBeUndefined();
    expect(r.data!.me.id).toMatch(/^[0-9a-f]{24}$/);
    expect(a.cookie).not.toBe('anonymo.sid=s%3Aforged.signature');
  });

  test('a WebSocket carrying the cookie runs as the cookie’s user', async () => {
    const browser = new TestClient(server);
    const me = await browser.me();
    const ws = browser.ws();
    try {
      const r = await ws.query<{ me: { id: string } }>('{ me { id } }');
      expect(r.data?.me.id).toBe(me.id);
    } finally {
      await ws.close();
    }
  });

  test('a WebSocket without a cookie gets a new identity and its cookie on the 101 response', async () => {
    const browser = new TestClient(server);
    const ws = browser.ws();
    try {
      const r = await ws.query<{ me: { id: string } }>('{ me { id } }');
      const setCookie = ws.upgradeResponse!.headers['set-cookie']!.join(';');
      expect(setCookie).toMatch(/anonymo\.sid=s%3A.*HttpOnly/i);
      // The browser keeps the cookie: its next HTTP request is the same user.
      expect((await browser.me()).id).toBe(r.data!.me.id);
    } finally {
      await ws.close();
    }
  });

  test('avatars are served by the server as SVG', async () => {
    const browser = new TestClient(server);
    const me = (await browser.data<{ me: { avatarUrl: string } }>('{ me { avatarUrl } }')).me;
    const res = await fetch(new URL(me.avatarUrl, server.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/image\/svg\+xml/);
    expect(await res.text()).toMatch(/^<svg/);
    expect((await fetch(new URL('/avatars/..%2Fetc.svg', server.url))).status).toBe(404);
  });
});

describe('identity reset', () => {
  test('resetIdentity gives a new user and a new session; the old cookie no longer maps to anyone', async () => {
    const browser = new TestClient(server);
    const before = await browser.me();
    const oldCookie = browser.cookie!;
    const r = await browser.data<{ resetIdentity: { id: string; username: string } }>(
      'mutation { resetIdentity { id username } }',
    );
    expect(r.resetIdentity.id).not.toBe(before.id);
    expect(browser.cookie).not.toBe(oldCookie);
    expect((await browser.me()).id).toBe(r.resetIdentity.id);
    // The old session is gone: its cookie gets a brand-new identity, not the old one.
    const replay = new TestClient(server);
    replay.cookie = oldCookie;
    const replayed = await replay.me();
    expect(replayed.id).not.toBe(before.id);
    expect(replayed.id).not.toBe(r.resetIdentity.id);
  });

  test('the old session’s WebSockets are closed with 4001 so clients reconnect as the new user', async () => {
    const browser = new TestClient(server);
    await browser.me();
    const ws = browser.ws();
    try {
      await ws.connected();
      await browser.data('mutation { resetIdentity { id } }');
      await waitFor(() => ws.closes.length > 0).catch(() => undefined); // the assertion says what came instead
      expect(ws.closes[0]).toEqual({ code: 4001, reason: 'Identity reset' });
    } finally {
      await ws.close();
    }
  });

  test('resetIdentity over WebSocket is FORBIDDEN (a cookie can only be set over HTTP)', async () => {
    const browser = new TestClient(server);
    const ws = browser.ws();
    try {
      const r = await ws.query('mutation { resetIdentity { id } }');
      expect(r.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    } finally {
      await ws.close();
    }
  });

  test('a cookieless resetIdentity makes one identity, not a second one nobody holds a cookie for', async () => {
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const before = await db.collection('users').countDocuments();
      const browser = new TestClient(server);
      const r = await browser.data<{ resetIdentity: { id: string } }>('mutation { resetIdentity { id } }');
      expect((await browser.me()).id).toBe(r.resetIdentity.id);
      expect(await db.collection('users').countDocuments()).toBe(before + 1);
      expect(await db.collection('sessions').countDocuments({ userId: r.resetIdentity.id })).toBe(1);
    } finally {
      await close();
    }
  });
});

test('a cookieless WebSocket refused for open connections leaves no user behind', async () => {
  const tight = await startServer({ env: { WS_MAX_CONNECTIONS_PER_IP: '1' } });
  const { db, close } = await openDb(tight.mongodbUri);
  try {
    const browser = new TestClient(tight);
    await browser.me();
    const open = await upgrade(tight.wsUrl, { cookie: browser.cookie! });
    expect(open.status).toBe(101);
    const refused = await upgrade(tight.wsUrl);
    expect(refused.status).toBe(429);
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(await db.collection('users').countDocuments()).toBe(1);
    expect(await db.collection('sessions').countDocuments()).toBe(1);
    open.ws!.close();
  } finally {
    await close();
    await tight.close();
  }
});
