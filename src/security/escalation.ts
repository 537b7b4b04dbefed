/**
 * Escalating cooldowns: a key (a user, an address) that keeps hitting a rate limit waits
 * longer each time, doubling up to a maximum, and is forgiven step by step while it behaves.
 * A client that honours `retryAfterMs` never notices; a bot hammering the API through its
 * refusals quickly waits the maximum.
 *
 * Two implementations of one interface, like pub/sub: {@link Escalation} counts in this
 * process's memory; {@link RedisEscalation} (with REDIS_URL) keeps the strikes in Redis, so
 * a flood spread over several instances escalates as one and every instance sees the same
 * cooldown. Both apply the same rule (see `next`).
 */
import { lru } from '../util/lru';

/** One strike is forgiven per this long without a refusal. */
export const DECAY_MS = 10 * 60 * 1000;

interface Strikes {
  count: number;
  /** The first refusal's wait, the unit that doubles. */
  base: number;
  until: number;
  last: number;
}

/** Where strikes are counted. Either answer may be a promise (Redis). */
export interface EscalationStore {
  /** Milliseconds the key must still wait from earlier refusals (0: none). */
  remaining(key: string): number | Promise<number>;
  /** Records a refusal that asked to wait `waitMs`; returns the (escalated) wait. */
  strike(key: string, waitMs: number): number | Promise<number>;
}

/** In this process's memory (without REDIS_URL; and Redis's fallback while it is away). */
export class Escalation implements EscalationStore {
  private readonly keys = lru<string, Strikes>(100000);

  constructor(
    private readonly maxMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private current(key: string): Strikes | undefined {
    const s = this.keys.get(key);
    if (!s) return undefined;
    const forgiven = Math.floor((this.now() - s.last) / DECAY_MS);
    if (forgiven >= s.count) {
      this.keys.delete(key);
      return undefined;
    }
    return forgiven > 0 ? { ...s, count: s.count - forgiven, last: s.last + forgiven * DECAY_MS } : s;
  }

  /** Milliseconds the key must still wait from earlier refusals (0: none). */
  remaining(key: string): number {
    const s = this.current(key);
    return s ? Math.max(0, s.until - this.now()) : 0;
  }

  /** Records a refusal that asked to wait `waitMs`; returns the (escalated) wait. */
  strike(key: string, waitMs: number): number {
    if (this.maxMs <= 0) return waitMs;
    const now = this.now();
    const s = this.current(key);
    const count = (s?.count ?? 0) + 1;
    const base = s?.base ?? Math.max(1000, waitMs);
    const wait = Math.min(this.maxMs, Math.max(waitMs, base * 2 ** (count - 1)));
    this.keys.set(key, { count, base, until: now + wait, last: now });
    return wait;
  }
}

/**
 * One atomic step in Redis: forgive a strike per DECAY_MS since the last refusal, add this
 * one, double from the first refusal's wait up to the maximum. The hash expires once every
 * strike would have been forgiven. KEYS[1] the key; ARGV now, wait, max, decay (ms).
 */
const STRIKE = `
local now, waitMs, maxMs, decay = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'count', 'base', 'last')
local count, base, last = tonumber(h[1]) or 0, tonumber(h[2]), tonumber(h[3]) or now
if count > 0 then
  local forgiven = math.floor((now - last) / decay)
  if forgiven >= count then count = 0; base = nil else count = count - forgiven end
end
count = count + 1
if not base then base = math.max(1000, waitMs) end
local wait = math.min(maxMs, math.max(waitMs, base * 2 ^ (count - 1)))
redis.call('HSET', KEYS[1], 'count', count, 'base', base, 'until', now + wait, 'last', now)
redis.call('PEXPIRE', KEYS[1], math.max(wait, count * decay))
return wait
`;

/** The Redis commands {@link RedisEscalation} uses (an ioredis connection from infra/redis.ts). */
export interface EscalationRedis {
  hmget(key: string, ...fields: string[]): Promise<Array<string | null>>;
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

/** Strikes shared by every instance through Redis; this instance's memory while Redis is away. */
export class RedisEscalation implements EscalationStore {
  private readonly fallback: Escalation;

  constructor(
    private readonly redis: EscalationRedis,
    private readonly prefix: string,
    private readonly maxMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.fallback = new Escalation(maxMs, now);
  }

  private key(key: string): string {
    return `${this.prefix}escalation:${key}`;
  }

  async remaining(key: string): Promise<number> {
    try {
      const [count, until, last] = await this.redis.hmget(this.key(key), 'count', 'until', 'last');
      if (!count || !until || !last) return this.fallback.remaining(key);
      const now = this.now();
      if (Math.floor((now - Number(last)) / DECAY_MS) >= Number(count)) return 0;
      return Math.max(0, Number(until) - now, this.fallback.remaining(key));
    } catch {
      return this.fallback.remaining(key);
    }
  }

  async strike(key: string, waitMs: number): Promise<number> {
    if (this.maxMs <= 0) return waitMs;
    try {
      return Number(await this.redis.eval(STRIKE, 1, this.key(key), this.now(), waitMs, this.maxMs, DECAY_MS));
    } catch {
      // Redis away: escalate here rather than not at all.
      return this.fallback.strike(key, waitMs);
    }
  }
}
