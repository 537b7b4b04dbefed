/**
 * "Talk to a stranger" through the real API: interests, pairing order (shared interests first,
 * anyone after the wait), MATCHED/ENDED events, FORBIDDEN after the end and no second pairing
 * of the same two, leaving the queue with the last connection, and the pairing race of four
 * users on two instances, with the Redis matcher and with the database one.
 */
import { randomBytes } from 'node:crypto';
import { TestClient, type WsTestClient, type Subscription } from '../helpers/client';
import { freshDbName, openDb } from '../helpers/db';
import { noSubscriptionsLeft, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor, waitForValue } from '../helpers/wait';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const FIND = 'mutation($interests: [String!]) { findStranger(interests: $interests) }';
const LEAVE_QUEUE = 'mutation { leaveStrangerQueue }';
const END = 'mutation($with: ID!) { endStrangerChat(with: $with) }';
const EVENTS = 'subscription { strangerEvents { kind with { id username } sharedInterests } }';
const CHAT = '{ strangerChat { with { id } sharedInterests } }';
const SEND = 'mutation($to: ID!, $text: String!) { sendMessage(input: { to: $to, text: $text }) { id } }';
const HISTORY = 'query($with: ID!) { messages(with: $with) { edges { node { text } } } }';

interface StrangerEventData {
  strangerEvents: { kind: 'MATCHED' | 'ENDED'; with: { id: string; username: string }; sharedInterests: string[] };
}

interface Person {
  client: TestClient;
  id: string;
  ws: WsTestClient;
  events: Subscription<StrangerEventData>;
}

/** A user with an open WebSocket subscribed to their stranger events. */
async function person(server: TestServer): Promise<Person> {
  const client = new TestClient(server);
  const { id } = await client.me();
  const ws = client.ws();
  const events = ws.subscribe<StrangerEventData>(EVENTS);
  await ws.connected();
  return { client, id, ws, events };
}

const find = (p: Person, interests?: string[]) => p.client.data(FIND, interests ? { interests } : {});
const matchedWith = async (p: Person, timeoutMs = 5000) =>
  (await p.events.waitFor((items) => items.some((i) => i.strangerEvents.kind === 'MATCHED'), timeoutMs, 'MATCHED'))
    .map((i) => i.strangerEvents)
    .find((e) => e.kind === 'MATCHED')!;
const partnerOf = async (c: TestClient) =>
  (await c.data<{ strangerChat: { with: { id: string } } | null }>(CHAT)).strangerChat?.with.id ?? null;

async function closeAll(people: Person[]): Promise<void> {
  await Promise.all(people.map((p) => p.ws.close()));
}

describe('one instance (database matcher)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { STRANGER_ANY_AFTER_MS: '60000' } });
  });
  afterAll(async () => {
    await server?.close();
  });
  afterEach(() => noSubscriptionsLeft(server));

  test('interests: at most 5, each 1..24 letters, digits or "-"; else BAD_USER_INPUT', async () => {
    const c = new TestClient(server);
    await c.me();
    for (const interests of [
      ['a', 'b', 'c', 'd', 'e', 'f'],
      ['   '],
      ['x'.repeat(25)],
      ['no spaces'],
      ['emoji🙂'],
      ['semi;colon'],
    ]) {
      expect(await c.errorCode(FIND, { interests })).toBe('BAD_USER_INPUT');
    }
    expect(
      (await c.data<{ findStranger: boolean }>(FIND, { interests: [' Jazz ', 'sci-fi', 'Ünïcode', '42'] }))
        .findStranger,
    ).toBe(true);
    expect((await c.data<{ leaveStrangerQueue: boolean }>(LEAVE_QUEUE)).leaveStrangerQueue).toBe(true);
    expect((await c.data<{ leaveStrangerQueue: boolean }>(LEAVE_QUEUE)).leaveStrangerQueue).toBe(false);
  });

  test('two strangers sharing an interest are paired, chat, and after the end can never write or meet again', async () => {
    const alice = await person(server);
    const bob = await person(server);
    const others: Person[] = [];
    try {
      await subscriptionsAttached(server, 2);
      await find(alice, ['Chess', 'jazz']);
      await find(bob, ['  JAZZ', 'hiking']);
      const [a, b] = await Promise.all([matchedWith(alice), matchedWith(bob)]);
      expect(a).toMatchObject({ kind: 'MATCHED', with: { id: bob.id }, sharedInterests: ['jazz'] });
      expect(b).toMatchObject({ kind: 'MATCHED', with: { id: alice.id }, sharedInterests: ['jazz'] });
      expect(await partnerOf(alice.client)).toBe(bob.id);

      await alice.client.data(SEND, { to: bob.id, text: 'hi stranger' });
      await bob.client.data(SEND, { to: alice.id, text: 'hello' });

      const started = Date.now();
      expect((await alice.client.data<{ endStrangerChat: boolean }>(END, { with: bob.id })).endStrangerChat).toBe(true);
      const ended = await bob.events.waitFor(
        (items) => items.some((i) => i.strangerEvents.kind === 'ENDED'),
        1000,
        'ENDED within a second',
      );
      expect(Date.now() - started).toBeLessThan(1000);
      expect(ended.map((i) => i.strangerEvents).find((e) => e.kind === 'ENDED')).toMatchObject({
        with: { id: alice.id },
      });
      // Neither can write to the other any more; the history stays readable to both.
      expect(await alice.client.errorCode(SEND, { to: bob.id, text: 'wait' })).toBe('FORBIDDEN');
      expect(await bob.client.errorCode(SEND, { to: alice.id, text: 'come back' })).toBe('FORBIDDEN');
      for (const [viewer, other] of [
        [alice, bob],
        [bob, alice],
      ]) {
        const h = await viewer.client.data<{ messages: { edges: Array<{ node: { text: string } }> } }>(HISTORY, {
          with: other.id,
        });
        expect(h.messages.edges.map((e) => e.node.text)).toEqual(['hi stranger', 'hello']);
      }
      expect(await partnerOf(alice.client)).toBeNull();
      expect((await alice.client.data<{ endStrangerChat: boolean }>(END, { with: bob.id })).endStrangerChat).toBe(
        false,
      );

      // Both queue again with the same interest: they are not paired with each other; the
      // next two people who share it are paired with them, the longest waiting first.
      await find(alice, ['jazz']);
      await find(bob, ['jazz']);
      const carol = await person(server);
      const dave = await person(server);
      others.push(carol, dave);
      await subscriptionsAttached(server, 4);
      await find(carol, ['jazz']);
      expect((await matchedWith(carol)).with.id).toBe(alice.id);
      await find(dave, ['jazz']);
      expect((await matchedWith(dave)).with.id).toBe(bob.id);
      const bobMatches = bob.events.items.filter((i) => i.strangerEvents.kind === 'MATCHED');
      expect(bobMatches.map((i) => i.strangerEvents.with.id)).toEqual([alice.id, dave.id]);
    } finally {
      await closeAll([alice, bob, ...others]);
    }
  });

  test('a shared interest is preferred over a longer wait', async () => {
    const [xavier, yara, zoe] = [await person(server), await person(server), await person(server)];
    try {
      await subscriptionsAttached(server, 3);
      await find(xavier, ['music']);
      await find(yara, ['chess']);
      await find(zoe, ['go', 'chess']);
      expect(await matchedWith(zoe)).toMatchObject({ with: { id: yara.id }, sharedInterests: ['chess'] });
      expect((await matchedWith(yara)).with.id).toBe(zoe.id);
      expect(await partnerOf(xavier.client)).toBeNull();
      expect((await xavier.client.data<{ leaveStrangerQueue: boolean }>(LEAVE_QUEUE)).leaveStrangerQueue).toBe(true);
    } finally {
      await closeAll([xavier, yara, zoe]);
    }
  });

  test('"Next": finding again ends the current chat, the stranger is told, and a new one is found', async () => {
    const [p, q, r] = [await person(server), await person(server), await person(server)];
    try {
      await subscriptionsAttached(server, 3);
      await find(p);
      await find(q);
      expect((await matchedWith(p)).with.id).toBe(q.id);
      await find(p);
      await q.events.waitFor((items) => items.some((i) => i.strangerEvents.kind === 'ENDED'), 1000, 'ENDED');
      await find(r);
      expect((await matchedWith(r)).with.id).toBe(p.id);
    } finally {
      await closeAll([p, q, r]);
    }
  });

  test('a queued user whose last connection closes leaves the queue', async () => {
    const leaver = await person(server);
    const secondTab = leaver.client.ws();
    await secondTab.connected();
    const { db, close } = await openDb(server.mongodbUri);
    const [w, v] = [await person(server), await person(server)];
    try {
      await find(leaver);
      const queued = () => db.collection('stranger_queue').countDocuments({ _id: leaver.id as never });
      expect(await queued()).toBe(1);
      await leaver.ws.close();
      // One tab is still open: still waiting.
      await secondTab.close();
      await waitFor(async () => (await queued()) === 0, { what: 'the queue entry to go' });
      await subscriptionsAttached(server, 2);
      await find(w);
      await find(v);
      expect((await matchedWith(w)).with.id).toBe(v.id);
    } finally {
      await close();
      await closeAll([w, v]);
    }
  });
});

describe('waiting', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { STRANGER_ANY_AFTER_MS: '300' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  test('after the wait anyone waiting is eligible, shared interest or not', async () => {
    const [p, q] = [await person(server), await person(server)];
    try {
      await subscriptionsAttached(server, 2);
      await find(p, ['knitting']);
      await find(q, ['rockets']);
      const [a, b] = await Promise.all([matchedWith(p), matchedWith(q)]);
      expect(a).toMatchObject({ with: { id: q.id }, sharedInterests: [] });
      expect(b.with.id).toBe(p.id);
    } finally {
      await closeAll([p, q]);
    }
  });
});

/**
 * Four users, two on each instance, call findStranger at the same moment, several rounds:
 * always two pairs, nobody in two pairs, nobody left waiting.
 */
async function raceRounds(a: TestServer, b: TestServer, rounds: number, checkEvents: boolean): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const people = await Promise.all([a, a, b, b].map((s) => person(s)));
    try {
      if (checkEvents) {
        await Promise.all([subscriptionsAttached(a, 2), subscriptionsAttached(b, 2)]);
      }
      await Promise.all(people.map((p) => find(p)));
      const partners = await Promise.all(
        people.map((p) =>
          waitForValue(
            () => partnerOf(p.client),
            (v) => v !== null,
            { what: 'a partner' },
          ),
        ),
      );
      const ids = people.map((p) => p.id);
      partners.forEach((partner, i) => {
        expect(ids).toContain(partner);
        expect(partner).not.toBe(ids[i]);
        // Symmetric: my stranger's stranger is me, so there are exactly two pairs.
        expect(partners[ids.indexOf(partner!)]).toBe(ids[i]);
      });
      if (checkEvents) {
        const matched = await Promise.all(people.map((p) => matchedWith(p)));
        matched.forEach((m, i) => expect(m.with.id).toBe(partners[i]));
        // Exactly one MATCHED each.
        for (const p of people) {
          expect(p.events.items.filter((e) => e.strangerEvents.kind === 'MATCHED')).toHaveLength(1);
        }
      }
    } finally {
      await closeAll(people);
    }
  }
}

describe('two instances', () => {
  test('with Redis (Lua script): four simultaneous findStranger calls make two pairs, every round', async () => {
    const dbName = freshDbName('strangers');
    const env = { REDIS_URL, REDIS_PREFIX: `anonymo-test-${randomBytes(4).toString('hex')}:` };
    const a = await startServer({ dbName, env });
    const b = await startServer({ dbName, env });
    try {
      await raceRounds(a, b, 5, true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60000);

  test('without Redis (claims by insert): four simultaneous findStranger calls make two pairs, every round', async () => {
    const dbName = freshDbName('strangers');
    const a = await startServer({ dbName });
    const b = await startServer({ dbName });
    try {
      await raceRounds(a, b, 5, false);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60000);
});
