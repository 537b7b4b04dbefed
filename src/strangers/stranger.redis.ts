/**
 * The stranger queue in Redis: one Lua script looks for a stranger and records the pairing
 * (or queues the user) atomically, so any number of instances calling it at once never put a
 * user in two pairings or leave two eligible users waiting. Keys (under REDIS_PREFIX):
 *
 *   stranger:queue          sorted set: waiting user → since (ms)
 *   stranger:interests      hash: waiting user → JSON array of interests
 *   stranger:pair:<user>    the user's current stranger; the shared interests in stranger:shared:<user>
 *   stranger:ended:<user>   set: users this user's chats ended with (never paired again)
 *   stranger:lease:<user>   exists while the waiting user's entry is held (PX STRANGER_QUEUE_LEASE_MS,
 *                           renewed by the instances where the user is connected); an entry whose
 *                           lease expired (its instance died) is removed by the next match or sweep
 *
 * The script applies the same ranking as rankStrangers in stranger.matcher.ts.
 */
import type { Redis } from 'ioredis';
import { closeRedis, createRedisClient } from '../infra/redis';
import type { EnqueueResult, StrangerMatcher } from './stranger.matcher';

// ARGV: prefix, user, now, anyAfterMs, mode ('enqueue' | 'retry'), interests JSON, excluded JSON, leaseMs
const MATCH = `
local p, u, now, anyAfter, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local leaseMs = tonumber(ARGV[8])
local queue, info = p .. 'stranger:queue', p .. 'stranger:interests'
if redis.call('EXISTS', p .. 'stranger:pair:' .. u) == 1 then return {'paired'} end
local since = redis.call('ZSCORE', queue, u)
local interests
if mode == 'retry' then
  if not since then return {'gone'} end
  interests = cjson.decode(redis.call('HGET', info, u) or '[]')
else
  interests = cjson.decode(ARGV[6])
end
since = tonumber(since) or now
local excluded = {}
for _, x in ipairs(cjson.decode(ARGV[7])) do excluded[x] = true end
local mine = {}
for _, i in ipairs(interests) do mine[i] = true end
local ended = p .. 'stranger:ended:' .. u
local pick, pickShared, fallback = nil, nil, nil
local waiting = redis.call('ZRANGE', queue, 0, -1, 'WITHSCORES')
for k = 1, #waiting, 2 do
  local w, wsince = waiting[k], tonumber(waiting[k + 1])
  if w ~= u and redis.call('EXISTS', p .. 'stranger:lease:' .. w) == 0 then
    redis.call('ZREM', queue, w)
    redis.call('HDEL', info, w)
  elseif w ~= u and not excluded[w] and redis.call('SISMEMBER', ended, w) == 0 then
    local theirs = cjson.decode(redis.call('HGET', info, w) or '[]')
    local shared = {}
    for _, t in ipairs(theirs) do if mine[t] then shared[#shared + 1] = t end end
    if #shared > 0 then pick, pickShared = w, shared; break end
    if not fallback and ((#interests == 0 and #theirs == 0) or now - since >= anyAfter or now - wsince >= anyAfter) then
      fallback = w
    end
  end
end
if not pick and fallback then pick, pickShared = fallback, {} end
if pick then
  redis.call('ZREM', queue, u, pick)
  redis.call('HDEL', info, u, pick)
  local sharedJson = #pickShared > 0 and cjson.encode(pickShared) or '[]'
  redis.call('SET', p .. 'stranger:pair:' .. u, pick)
  redis.call('SET', p .. 'stranger:pair:' .. pick, u)
  redis.call('SET', p .. 'stranger:shared:' .. u, sharedJson)
  redis.call('SET', p .. 'stranger:shared:' .. pick, sharedJson)
  redis.call('DEL', p .. 'stranger:lease:' .. u, p .. 'stranger:lease:' .. pick)
  return {'matched', pick, sharedJson}
end
redis.call('ZADD', queue, since, u)
redis.call('SET', p .. 'stranger:lease:' .. u, '1', 'PX', leaseMs)
if mode == 'enqueue' then redis.call('HSET', info, u, ARGV[6]) end
return {'queued', tostring(since)}`;

// ARGV: prefix, a, b. Ends a's pairing with b (only if it is with b) and remembers it both ways.
const END = `
local p, a, b = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', p .. 'stranger:pair:' .. a) ~= b then return 0 end
redis.call('DEL', p .. 'stranger:pair:' .. a, p .. 'stranger:shared:' .. a)
if redis.call('GET', p .. 'stranger:pair:' .. b) == a then
  redis.call('DEL', p .. 'stranger:pair:' .. b, p .. 'stranger:shared:' .. b)
end
redis.call('SADD', p .. 'stranger:ended:' .. a, b)
redis.call('SADD', p .. 'stranger:ended:' .. b, a)
return 1`;

// ARGV: prefix. Removes waiting users whose lease expired; returns how many.
const SWEEP = `
local p = ARGV[1]
local queue, info = p .. 'stranger:queue', p .. 'stranger:interests'
local n = 0
for _, w in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
  if redis.call('EXISTS', p .. 'stranger:lease:' .. w) == 0 then
    redis.call('ZREM', queue, w)
    redis.call('HDEL', info, w)
    n = n + 1
  end
end
return n`;

// ARGV: prefix, leaseMs, users... Renews the lease of those still waiting.
const RENEW = `
local p, leaseMs = ARGV[1], tonumber(ARGV[2])
for k = 3, #ARGV do
  if redis.call('ZSCORE', p .. 'stranger:queue', ARGV[k]) then
    redis.call('SET', p .. 'stranger:lease:' .. ARGV[k], '1', 'PX', leaseMs)
  end
end
return 1`;

// ARGV: prefix, user. Forgets the user's ended chats, on both sides.
const FORGET = `
local p, u = ARGV[1], ARGV[2]
for _, w in ipairs(redis.call('SMEMBERS', p .. 'stranger:ended:' .. u)) do
  redis.call('SREM', p .. 'stranger:ended:' .. w, u)
end
redis.call('DEL', p .. 'stranger:ended:' .. u, p .. 'stranger:lease:' .. u)
return 1`;

type MatcherRedis = Redis & {
  strangerForget(...argv: string[]): Promise<number>;
  strangerSweep(...argv: string[]): Promise<number>;
  strangerRenew(...argv: string[]): Promise<number>;
  strangerMatch(...argv: string[]): Promise<string[]>;
  strangerEnd(...argv: string[]): Promise<number>;
};

const parseList = (json: string): string[] => {
  const v: unknown = JSON.parse(json);
  return Array.isArray(v) ? v.map(String) : [];
};

export class RedisStrangerMatcher implements StrangerMatcher {
  readonly cheapLeave = true;
  private readonly redis: MatcherRedis;

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly anyAfterMs: number,
    /** How long a queue entry lives without renewal (STRANGER_QUEUE_LEASE_MS). */
    private readonly leaseMs: number,
  ) {
    this.redis = createRedisClient(url, { name: 'strangers' }) as MatcherRedis;
    this.redis.on('error', () => undefined); // reconnects by itself; failures surface per command
    this.redis.defineCommand('strangerMatch', { numberOfKeys: 0, lua: MATCH });
    this.redis.defineCommand('strangerEnd', { numberOfKeys: 0, lua: END });
    this.redis.defineCommand('strangerSweep', { numberOfKeys: 0, lua: SWEEP });
    this.redis.defineCommand('strangerRenew', { numberOfKeys: 0, lua: RENEW });
    this.redis.defineCommand('strangerForget', { numberOfKeys: 0, lua: FORGET });
  }

  private async run(userId: string, mode: 'enqueue' | 'retry', interests: string[], now: number, excluded: string[]) {
    const r = await this.redis.strangerMatch(
      this.prefix,
      userId,
      String(now),
      String(this.anyAfterMs),
      mode,
      JSON.stringify(interests),
      JSON.stringify(excluded),
      String(this.leaseMs),
    );
    const result: EnqueueResult = { matched: null, since: null };
    if (r[0] === 'matched') result.matched = { user: userId, with: r[1], shared: parseList(r[2]) };
    if (r[0] === 'queued') result.since = Number(r[1]);
    return result;
  }

  enqueue(userId: string, interests: string[], now: number, excluded: string[]): Promise<EnqueueResult> {
    return this.run(userId, 'enqueue', interests, now, excluded);
  }

  retry(userId: string, now: number, excluded: string[]): Promise<EnqueueResult> {
    return this.run(userId, 'retry', [], now, excluded);
  }

  async leave(userId: string): Promise<boolean> {
    const [[, removed]] = (await this.redis
      .multi()
      .zrem(`${this.prefix}stranger:queue`, userId)
      .hdel(`${this.prefix}stranger:interests`, userId)
      .del(`${this.prefix}stranger:lease:${userId}`)
      .exec()) as [[Error | null, number], [Error | null, number], [Error | null, number]];
    return removed === 1;
  }

  async forget(userId: string): Promise<void> {
    await this.redis.strangerForget(this.prefix, userId);
  }

  async renew(isMine: (userId: string) => boolean, _now: number): Promise<string[]> {
    const waiting = await this.redis.zrange(`${this.prefix}stranger:queue`, '0', '-1');
    const mine = waiting.filter(isMine);
    // Checked again inside the script: a user paired since the read gets no stray lease.
    if (mine.length > 0) await this.redis.strangerRenew(this.prefix, String(this.leaseMs), ...mine);
    return waiting;
  }

  sweep(_now: number): Promise<number> {
    return this.redis.strangerSweep(this.prefix);
  }

  async partner(userId: string): Promise<{ with: string; shared: string[] } | null> {
    const [other, shared] = await this.redis.mget(
      `${this.prefix}stranger:pair:${userId}`,
      `${this.prefix}stranger:shared:${userId}`,
    );
    return other ? { with: other, shared: parseList(shared ?? '[]') } : null;
  }

  async end(a: string, b: string): Promise<boolean> {
    return (await this.redis.strangerEnd(this.prefix, a, b)) === 1;
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }

  connect(): Promise<void> {
    return this.redis.connect();
  }
}
