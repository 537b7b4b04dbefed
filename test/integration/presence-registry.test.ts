import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { Redis } from 'ioredis';
import { RedisPresenceRegistry } from '../../src/presence/presence.registry';
import { waitFor } from '../helpers/wait';
import { closeRedis } from '../../src/infra/redis';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = pino({ level: 'silent' });

describe('presence across instances (Redis registry)', () => {
  const run = `anonymo-test-${randomBytes(4).toString('hex')}`;
  let prefix = '';
  let deployment = 0;
  // Each test is its own deployment: any live instance may reap a dead one.
  beforeEach(() => {
    prefix = `${run}:${++deployment}:`;
  });
  const made: RedisPresenceRegistry[] = [];
  const instance = async (ttl = 400, onOffline: (id: string) => void = () => undefined) => {
    const r = new RedisPresenceRegistry({ url: REDIS_URL, prefix, heartbeatTtlMs: ttl, logger });
    await r.start(onOffline);
    made.push(r);
    return r;
  };

  afterAll(async () => {
    await Promise.all(made.map((r) => r.stop().catch(() => undefined)));
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${run}:*`);
    if (keys.length) await redis.del(...keys);
    await closeRedis(redis);
  });

  test('a user held by two instances goes online once and offline once, when the last lets go', async () => {
    const [a, b] = [await instance(), await instance()];
    expect(await a.join('u1')).toBe(true);
    expect(await b.join('u1')).toBe(false);
    expect(await b.onlineUserIds()).toContain('u1');
    expect(await a.leave('u1')).toBe(false);
    expect(await b.onlineUserIds()).toContain('u1');
    expect(await b.leave('u1')).toBe(true);
    expect(await a.onlineUserIds()).not.toContain('u1');
  });

  test('concurrent joins and leaves on many instances produce exactly one transition each way', async () => {
    const regs = await Promise.all(Array.from({ length: 5 }, () => instance()));
    const joins = await Promise.all(regs.map((r) => r.join('u2')));
    expect(joins.filter(Boolean)).toHaveLength(1);
    const leaves = await Promise.all(regs.map((r) => r.leave('u2')));
    expect(leaves.filter(Boolean)).toHaveLength(1);
  });

  test('when an instance dies, its users go offline on another instance once its heartbeat expires', async () => {
    const offline: string[] = [];
    const survivor = await instance(400, (id) => offline.push(id));
    const doomed = await instance(400);
    await doomed.join('u3');
    await survivor.join('u4'); // held by the survivor: stays online
    await doomed.join('u4');
    await doomed.stop(); // stops beating, like a crash
    await waitFor(() => offline.includes('u3'), { interval: 50 }).catch(() => undefined); // the assertion shows what came
    expect(offline).toEqual(['u3']);
    const online = await survivor.onlineUserIds();
    expect(online).toContain('u4');
    expect(online).not.toContain('u3');
  });
});
