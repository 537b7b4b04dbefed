/** RedisPubSub against the local Redis (REDIS_URL, default redis://127.0.0.1:6379). */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisPubSub } from '../../src/realtime/redis.pubsub';
import { waitFor } from '../helpers/wait';
import { closeRedis } from '../../src/infra/redis';

// Topics of this test only (the real ones are declared by the domains' *.events.ts files).
declare module '../../src/realtime/pubsub' {
  interface TopicMap {
    'test:dates': { message: { _id: string; createdAt: Date; readAt: Date | null }; at: Date };
    'test:order': { n: number };
    'test:presence': { x: number };
    'test:sync': { marker: boolean };
    [topic: `test:dm:${string}`]: { t: string };
  }
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `anonymo-test-${randomBytes(4).toString('hex')}:`;

let a: RedisPubSub;
let b: RedisPubSub;
let admin: Redis;
beforeAll(async () => {
  a = await RedisPubSub.connect({ url: REDIS_URL, prefix });
  b = await RedisPubSub.connect({ url: REDIS_URL, prefix });
  admin = new Redis(REDIS_URL);
});
afterAll(async () => {
  await a.close();
  await b.close();
  await closeRedis(admin);
});

function collect<T>(): { items: T[]; listener: (p: T) => void; waitFor(n: number): Promise<T[]> } {
  const items: T[] = [];
  return {
    items,
    listener: (p: T) => void items.push(p),
    async waitFor(n: number) {
      await waitFor(() => items.length >= n).catch(() => {
        throw new Error(`got ${items.length} of ${n}`);
      });
      return items;
    },
  };
}

/**
 * A positive sync point instead of a pause: subscribes `b` to a marker topic (Redis runs the
 * subscriber connection's commands in order, so any UNSUBSCRIBE issued before has been
 * processed), then publishes a marker through `a` and waits for it (Redis delivers to a
 * subscriber in publishing order, so everything published before has arrived).
 */
async function synced(): Promise<void> {
  const marker = collect<unknown>();
  const off = await b.subscribe('test:sync', marker.listener);
  try {
    await a.publish('test:sync', { marker: true });
    await marker.waitFor(1);
  } finally {
    off();
  }
}

test('an event published on one instance reaches the other with its Dates as Dates', async () => {
  const got = collect<{ message: { _id: string; createdAt: Date; readAt: Date | null }; at: Date }>();
  const off = await b.subscribe('test:dates', got.listener);
  const createdAt = new Date('2026-01-02T03:04:05.678Z');
  await a.publish('test:dates', { message: { _id: 'lobby:000000000001', createdAt, readAt: null }, at: createdAt });
  const [ev] = await got.waitFor(1);
  expect(ev.message._id).toBe('lobby:000000000001');
  expect(ev.message.createdAt).toBeInstanceOf(Date);
  expect(ev.message.createdAt.getTime()).toBe(createdAt.getTime());
  expect(ev.at).toBeInstanceOf(Date);
  expect(ev.message.readAt).toBeNull();
  off();
});

test('publishing order per topic is kept', async () => {
  const got = collect<{ n: number }>();
  const off = await b.subscribe('test:order', got.listener);
  await Promise.all(Array.from({ length: 500 }, (_, n) => a.publish('test:order', { n })));
  const items = await got.waitFor(500);
  expect(items.map((i) => i.n)).toEqual(Array.from({ length: 500 }, (_, n) => n));
  off();
});

test('a Redis channel is subscribed only while the instance has listeners for the topic', async () => {
  const channel = `${prefix}test:presence`;
  const count = async () => ((await admin.pubsub('NUMSUB', channel)) as [string, number])[1];
  expect(await count()).toBe(0);
  const one = collect<unknown>();
  const two = collect<unknown>();
  const off1 = await b.subscribe('test:presence', one.listener);
  const off2 = await b.subscribe('test:presence', two.listener);
  // Two listeners, one Redis subscription.
  expect(await count()).toBe(1);
  await a.publish('test:presence', { x: 1 });
  await one.waitFor(1);
  await two.waitFor(1);
  off1();
  await synced();
  expect(await count()).toBe(1);
  off2();
  await synced();
  expect(await count()).toBe(0);
  expect(b.channelCount).toBe(0);
  await a.publish('test:presence', { x: 2 });
  await synced();
  expect(one.items).toHaveLength(1);
  expect(two.items).toHaveLength(1);
});

test('topics are isolated from each other and from other prefixes', async () => {
  const mine = collect<{ t: string }>();
  const off = await b.subscribe('test:dm:a:b', mine.listener);
  const other = await RedisPubSub.connect({ url: REDIS_URL, prefix: `${prefix}other:` });
  try {
    await other.publish('test:dm:a:b', { t: 'other deployment' });
    await a.publish('test:dm:a:c', { t: 'lobby' });
    await a.publish('test:dm:a:b', { t: 'dm' });
    await mine.waitFor(1);
    await synced();
    expect(mine.items).toEqual([{ t: 'dm' }]);
  } finally {
    off();
    await other.close();
  }
});

test('an unreachable Redis fails start-up with a clear error instead of hanging', async () => {
  await expect(RedisPubSub.connect({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 1000 })).rejects.toThrow(
    /Cannot connect to Redis/,
  );
});
