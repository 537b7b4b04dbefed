/** Floods and content rules through the real API: escalating cooldowns, slow mode, blocklist, links. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestClient } from '../helpers/client';
import { freshDbName } from '../helpers/db';
import { startServer, type TestServer } from '../helpers/server';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const TOKEN = 'flood-moderator-token-0123';
const SEND = 'mutation($text: String!, $to: ID) { sendMessage(input: { text: $text, to: $to }) { id } }';

const dir = mkdtempSync(path.join(tmpdir(), 'anonymo-blocklist-'));
const blocklist = path.join(dir, 'blocklist.txt');
writeFileSync(blocklist, '# words and expressions\nbadword\n/fr[e3]{2}\\s*money/\n\nbuy followers\n');

async function refusal(c: TestClient, text: string, to?: string) {
  const r = await c.gql(SEND, { text, to });
  return r.errors?.[0]?.extensions as { code: string; retryAfterMs?: number } | undefined;
}

describe('escalating cooldowns', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { RATE_LIMIT_SEND_MESSAGE: '2/10s', RATE_LIMIT_ESCALATION_MAX: '30s' } });
  });
  afterAll(() => server.close());

  test('repeated hits double the wait up to the maximum, RATE_LIMITED with retryAfterMs; other users are unaffected', async () => {
    const flooder = new TestClient(server);
    const neighbour = new TestClient(server);
    await neighbour.me();
    await flooder.data(SEND, { text: '1' });
    await flooder.data(SEND, { text: '2' });
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const e = await refusal(flooder, `flood ${i}`);
      expect(e?.code).toBe('RATE_LIMITED');
      waits.push(e!.retryAfterMs!);
    }
    expect(waits[0]).toBeLessThanOrEqual(10000);
    expect(waits[1]).toBeGreaterThan(waits[0] * 1.5);
    expect(waits[2]).toBeGreaterThan(waits[1] * 1.5);
    expect(Math.max(...waits)).toBeLessThanOrEqual(30000);
    expect(waits[4]).toBeGreaterThan(29000);
    // Same address, different user: only the refused key escalated.
    await neighbour.data(SEND, { text: 'I am calm' });
  });
});

test('with Redis, cooldowns escalate across instances: hits on one lengthen the wait seen on the other', async () => {
  const dbName = freshDbName('escalation');
  const env = {
    REDIS_URL,
    REDIS_PREFIX: `anonymo-test-${randomBytes(4).toString('hex')}:`,
    RATE_LIMIT_SEND_MESSAGE: '2/10s',
    RATE_LIMIT_ESCALATION_MAX: '60s',
  };
  const a = await startServer({ dbName, env });
  const b = await startServer({ dbName, env });
  try {
    const onA = new TestClient(a);
    await onA.data(SEND, { text: '1' });
    await onA.data(SEND, { text: '2' });
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) waits.push((await refusal(onA, `flood ${i}`))!.retryAfterMs!);
    expect(waits[2]).toBeGreaterThan(waits[0] * 3);
    // The same browser on instance b: its first refusal there continues the escalation.
    const onB = Object.assign(new TestClient(b), { cookie: onA.cookie });
    const there = await refusal(onB, 'flood on b');
    expect(there?.code).toBe('RATE_LIMITED');
    expect(there!.retryAfterMs).toBeGreaterThan(waits[2]);
    // And back on a, the strike b added counts too (capped at the maximum).
    expect((await refusal(onA, 'flood again on a'))!.retryAfterMs).toBeGreaterThan(59000);
    // Another user on b is not slowed down.
    await new TestClient(b).data(SEND, { text: 'I am calm' });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

describe('content rules and slow mode', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { MODERATOR_TOKEN: TOKEN, BLOCKLIST_FILE: blocklist } });
  });
  afterAll(() => server.close());

  test('blocklisted words and expressions are CONTENT_BLOCKED; near misses pass', async () => {
    const c = new TestClient(server);
    expect((await refusal(c, 'what a BadWord!'))?.code).toBe('CONTENT_BLOCKED');
    expect((await refusal(c, 'FR33   money here'))?.code).toBe('CONTENT_BLOCKED');
    expect((await refusal(c, 'where can I buy followers'))?.code).toBe('CONTENT_BLOCKED');
    expect((await refusal(c, 'badword', (await new TestClient(server).me()).id))?.code).toBe('CONTENT_BLOCKED');
    await c.data(SEND, { text: 'badwords are not my thing; free of money worries' });
  });

  test('a new identity cannot post links in the lobby, but can in a direct message', async () => {
    const c = new TestClient(server);
    const other = await new TestClient(server).me();
    expect((await refusal(c, 'visit https://spam.example/now'))?.code).toBe('CONTENT_BLOCKED');
    expect((await refusal(c, 'visit cheap-pills.com'))?.code).toBe('CONTENT_BLOCKED');
    await c.data(SEND, { text: 'here is the link you asked for: https://example.org', to: other.id });
    await c.data(SEND, { text: 'no links, just words. Fine?' });
  });

  test('slow mode set by a moderator spaces one user’s lobby messages; direct messages and others are unaffected', async () => {
    const mod = new TestClient(server, { headers: { authorization: `Bearer ${TOKEN}` } });
    const [a, b] = [new TestClient(server), new TestClient(server)];
    const other = await b.me();
    expect((await refusal(a, 'x'))?.code).toBeUndefined();
    expect(await a.errorCode('mutation { setSlowMode(seconds: 60) }')).toBe('FORBIDDEN');
    expect(await mod.errorCode('mutation { setSlowMode(seconds: 99999) }')).toBe('BAD_USER_INPUT');
    expect(await mod.data('mutation { setSlowMode(seconds: 60) }')).toEqual({ setSlowMode: true });
    try {
      expect((await a.data('{ slowMode }')).slowMode).toBe(60);
      await a.data(SEND, { text: 'first' });
      const e = await refusal(a, 'second');
      expect(e?.code).toBe('RATE_LIMITED');
      expect(e!.retryAfterMs).toBeGreaterThan(50000);
      await b.data(SEND, { text: 'someone else' });
      await a.data(SEND, { text: 'a direct message', to: other.id });
      const log = await mod.data('{ moderationLog(first: 1) { edges { node { action target details } } } }');
      expect(log.moderationLog.edges[0].node).toMatchObject({ action: 'setSlowMode', target: 'lobby' });
    } finally {
      await mod.data('mutation { setSlowMode(seconds: 0) }');
    }
    await a.data(SEND, { text: 'slow mode is off again' });
  });
});

describe('slow mode in rooms', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { MODERATOR_TOKEN: TOKEN } });
  });
  afterAll(() => server.close());

  const CREATE = 'mutation($input: CreateRoomInput!) { createRoom(input: $input) { id slug } }';
  const JOIN = 'mutation($slug: String!) { joinRoom(slug: $slug) { id } }';
  const SET = 'mutation($room: ID, $seconds: Int!) { setSlowMode(room: $room, seconds: $seconds) }';
  const GET = 'query($room: ID) { slowMode(room: $room) }';
  const SEND_ROOM = 'mutation($text: String!, $room: ID) { sendMessage(input: { text: $text, room: $room }) { id } }';
  const roomRefusal = async (c: TestClient, text: string, room: string) =>
    (await c.gql(SEND_ROOM, { text, room })).errors?.[0]?.extensions as
      { code: string; retryAfterMs?: number } | undefined;
  const createRoom = async (c: TestClient, title: string, pub = true) =>
    (await c.data(CREATE, { input: { title, public: pub } })).createRoom as { id: string; slug: string };

  test('a room’s creator sets its slow mode; members are spaced there only; anyone else is FORBIDDEN', async () => {
    const [creator, member, outsider] = [new TestClient(server), new TestClient(server), new TestClient(server)];
    const room = await createRoom(creator, 'slow talk');
    await member.data(JOIN, { slug: room.slug });
    const other = await createRoom(outsider, 'elsewhere');
    await member.data(JOIN, { slug: other.slug });

    expect(await member.errorCode(SET, { room: room.id, seconds: 30 })).toBe('FORBIDDEN');
    expect(await outsider.errorCode(SET, { room: room.id, seconds: 30 })).toBe('FORBIDDEN');
    expect(await creator.errorCode(SET, { seconds: 30 })).toBe('FORBIDDEN'); // the lobby is the moderators'
    expect(await creator.errorCode(SET, { room: room.id, seconds: 3601 })).toBe('BAD_USER_INPUT');
    expect(await creator.data(SET, { room: room.id, seconds: 30 })).toEqual({ setSlowMode: true });
    expect((await member.data(GET, { room: room.id })).slowMode).toBe(30);
    expect((await member.data(GET, { room: other.id })).slowMode).toBe(0);
    expect((await member.data(GET, {})).slowMode).toBe(0);

    await member.data(SEND_ROOM, { text: 'first', room: room.id });
    const e = await roomRefusal(member, 'second', room.id);
    expect(e?.code).toBe('RATE_LIMITED');
    expect(e!.retryAfterMs).toBeGreaterThan(20000);
    // Elsewhere (another room, the lobby) the member is not slowed down.
    await member.data(SEND_ROOM, { text: 'in the other room', room: other.id });
    await member.data(SEND_ROOM, { text: 'in the lobby' });
    await member.data(SEND_ROOM, { text: 'in the lobby again' });

    expect(await creator.data(SET, { room: room.id, seconds: 0 })).toEqual({ setSlowMode: true });
    await member.data(SEND_ROOM, { text: 'slow mode is off', room: room.id });
  });

  test('a moderator sets any room’s slow mode, also a private one; it is in the audit log', async () => {
    const mod = new TestClient(server, { headers: { authorization: `Bearer ${TOKEN}` } });
    const [creator, stranger] = [new TestClient(server), new TestClient(server)];
    const room = await createRoom(creator, 'private corner', false);
    // A private room answers a non-member as an unknown one, whatever they ask.
    expect(await stranger.errorCode(SET, { room: room.id, seconds: 10 })).toBe('BAD_USER_INPUT');
    expect(await mod.errorCode(SET, { room: 'no-such-room-000', seconds: 10 })).toBe('BAD_USER_INPUT');
    expect(await mod.data(SET, { room: room.id, seconds: 10 })).toEqual({ setSlowMode: true });
    expect((await creator.data(GET, { room: room.id })).slowMode).toBe(10);
    await creator.data(SEND_ROOM, { text: 'one', room: room.id });
    expect((await roomRefusal(creator, 'two', room.id))?.code).toBe('RATE_LIMITED');
    const log = await mod.data('{ moderationLog(first: 1) { edges { node { by action target details } } } }');
    expect(log.moderationLog.edges[0].node).toMatchObject({
      by: 'moderator',
      action: 'setSlowMode',
      target: `room:${room.id}`,
    });
  });
});

test('a blocklist with a bad expression stops the server from starting, naming the line', async () => {
  const bad = path.join(dir, 'bad.txt');
  writeFileSync(bad, 'fine\n/([unclosed/\n');
  await expect(startServer({ env: { BLOCKLIST_FILE: bad } })).rejects.toThrow(/bad\.txt:2/);
});
