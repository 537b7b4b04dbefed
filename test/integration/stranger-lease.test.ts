/**
 * The stranger queue survives a crashed instance: each entry has a lease that the instances
 * where its user is connected renew; a second server process queues a user and is killed
 * with SIGKILL (no shutdown, no leaving the queue), and its entry is gone within the lease,
 * with the database matcher and with the Redis one; the next two strangers are paired with
 * each other, not with the ghost. And findStranger is rate limited.
 */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { TestClient, type Subscription } from '../helpers/client';
import { dbUri, freshDbName, openDb } from '../helpers/db';
import { subscriptionsAttached } from '../helpers/metrics';
import { ensureBuilt, startServerProcess, type ServerProcess } from '../helpers/process';
import { startServer, TEST_SECRET, type TestServer } from '../helpers/server';
import { waitForValue } from '../helpers/wait';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const LEASE_MS = 3000;

const FIND = 'mutation($interests: [String!]) { findStranger(interests: $interests) }';
const EVENTS = 'subscription { strangerEvents { kind with { id } sharedInterests } }';

interface StrangerEventData {
  strangerEvents: { kind: 'MATCHED' | 'ENDED'; with: { id: string }; sharedInterests: string[] };
}

jest.setTimeout(120000);

/** A user on `server` with a WebSocket subscribed to their stranger events. */
async function person(server: { url: string; wsUrl: string }) {
  const client = new TestClient(server);
  const { id } = await client.me();
  const ws = client.ws();
  const events: Subscription<StrangerEventData> = ws.subscribe<StrangerEventData>(EVENTS);
  await ws.connected();
  return { client, id, ws, events };
}

describe.each([
  ['the database matcher', false],
  ['the Redis matcher', true],
])('a crashed instance’s queue entries expire (%s)', (_name, withRedis) => {
  const dbName = freshDbName('stranger-lease');
  const prefix = `anonymo-test-${randomBytes(4).toString('hex')}:`;
  const env: Record<string, string> = {
    STRANGER_QUEUE_LEASE_MS: String(LEASE_MS),
    STRANGER_ANY_AFTER_MS: '60000',
    ...(withRedis ? { REDIS_URL, REDIS_PREFIX: prefix } : {}),
  };
  let server: TestServer;
  let doomed: ServerProcess | undefined;
  let db: Awaited<ReturnType<typeof openDb>>;
  let redis: Redis | undefined;
  beforeAll(async () => {
    ensureBuilt(); // compiling dist/ for the second process is not part of what is timed
    server = await startServer({ dbName, env });
    db = await openDb(server.mongodbUri);
    if (withRedis) redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    doomed?.child.kill('SIGKILL');
    redis?.disconnect();
    await db?.close();
    await server?.close();
  });

  /** Whether `userId` has an entry in the queue (where this matcher keeps it). */
  const queued = async (userId: string): Promise<boolean> =>
    redis
      ? (await redis.zscore(`${prefix}stranger:queue`, userId)) !== null
      : (await db.db.collection('stranger_queue').countDocuments({ _id: userId as never })) === 1;

  /** When the entry's lease ends now (ms since the epoch), or null when it has none. */
  const leaseEnd = async (userId: string): Promise<number | null> => {
    if (redis) {
      const ms = await redis.pttl(`${prefix}stranger:lease:${userId}`);
      return ms > 0 ? Date.now() + ms : null;
    }
    const doc = await db.db.collection('stranger_queue').findOne({ _id: userId as never });
    return typeof doc?.leaseUntil === 'number' ? doc.leaseUntil : null;
  };

  /** Resolves once the entry was renewed after its first lease would have run out: it outlived it. */
  async function outlivesItsLease(userId: string): Promise<void> {
    const first = (await leaseEnd(userId))!;
    expect(first).not.toBeNull();
    await waitForValue(
      () => leaseEnd(userId),
      (end) => end !== null && end > first + LEASE_MS,
      { what: 'a renewal past the first lease', timeout: 10000, interval: 100 },
    );
    expect(await queued(userId)).toBe(true);
  }

  test('an entry of a SIGKILLed instance is gone within the lease, and the next two strangers pair with each other', async () => {
    doomed = await startServerProcess({ ...env, MONGODB_URI: dbUri(dbName), SESSION_SECRET: TEST_SECRET });
    const ghost = await person(doomed);
    await ghost.client.data(FIND, { interests: ['chess'] });
    expect(await queued(ghost.id)).toBe(true);

    // It stays queued while its instance lives and renews it.
    await outlivesItsLease(ghost.id);

    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const killed = Date.now();
    await waitForValue(
      () => queued(ghost.id),
      (q) => !q,
      { what: 'the dead instance’s entry to go', timeout: 4 * LEASE_MS },
    );
    // The last renewal was at most a third of the lease before the kill; the sweep runs every third.
    expect(Date.now() - killed).toBeLessThan(2 * LEASE_MS);
    ghost.ws.close().catch(() => undefined);

    const carol = await person(server);
    const dave = await person(server);
    try {
      await subscriptionsAttached(server, 2);
      await carol.client.data(FIND, { interests: ['chess'] });
      await dave.client.data(FIND, { interests: ['chess'] });
      const matched = await carol.events.waitFor(
        (items) => items.some((i) => i.strangerEvents.kind === 'MATCHED'),
        5000,
        'MATCHED',
      );
      expect(matched[0].strangerEvents).toMatchObject({ kind: 'MATCHED', with: { id: dave.id } });
    } finally {
      await Promise.all([carol.ws.close(), dave.ws.close()]);
    }
  });

  test('a waiting user connected to a live instance keeps their place past the lease', async () => {
    const erin = await person(server);
    try {
      await erin.client.data(FIND, { interests: ['go'] });
      await outlivesItsLease(erin.id);
      await outlivesItsLease(erin.id);
    } finally {
      await erin.ws.close();
    }
  });
});

test('findStranger is rate limited per user: RATE_LIMITED with retryAfterMs', async () => {
  const server = await startServer({ env: { RATE_LIMIT_FIND_STRANGER: '3/1m' } });
  try {
    const c = new TestClient(server);
    await c.me();
    for (let i = 0; i < 3; i++) expect((await c.data<{ findStranger: boolean }>(FIND, {})).findStranger).toBe(true);
    const r = await c.gql(FIND, {});
    expect(r.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const retry = Number(r.errors?.[0]?.extensions?.retryAfterMs);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60000);
    // Another user has a budget of their own.
    const other = new TestClient(server);
    await other.me();
    expect((await other.data<{ findStranger: boolean }>(FIND, {})).findStranger).toBe(true);
  } finally {
    await server.close();
  }
});
