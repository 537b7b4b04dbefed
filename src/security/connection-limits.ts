/**
 * Open WebSocket connections per address (IPv6 by /64) and per identity. The rate of new
 * upgrades is limited elsewhere; this bounds how many stay open, so one address cannot fill
 * MAX_CONNECTIONS over a few hours and lock everyone else out.
 *
 * - MemoryConnectionCounter: one instance (no REDIS_URL).
 * - RedisConnectionCounter: every instance counts into one sorted set per key, member =
 *   connection, score = expiry. Live connections are refreshed periodically, so the entries
 *   of an instance that died expire on their own instead of counting forever.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ipKey } from './ip';
import type { ConnectionLimits } from './security.config';

export type ConnectionKind = 'ip' | 'user';
export interface ConnectionKeys {
  ip: string;
  user: string;
}

export interface ConnectionCounter {
  /** Counts connection `id` under its keys when every key is below its limit; else names the full one. */
  acquire(id: string, keys: ConnectionKeys): Promise<ConnectionKind | null>;
  release(id: string, keys: ConnectionKeys): void;
  close(): void;
}

const KINDS: ConnectionKind[] = ['ip', 'user'];
const keyOf = (kind: ConnectionKind, keys: ConnectionKeys) => (kind === 'ip' ? ipKey(keys.ip) : keys.user);

export class MemoryConnectionCounter implements ConnectionCounter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly limits: ConnectionLimits) {}

  acquire(_id: string, keys: ConnectionKeys): Promise<ConnectionKind | null> {
    for (const kind of KINDS) {
      const limit = kind === 'ip' ? this.limits.perIp : this.limits.perUser;
      if ((this.counts.get(`${kind}:${keyOf(kind, keys)}`) ?? 0) >= limit) return Promise.resolve(kind);
    }
    for (const kind of KINDS) {
      const k = `${kind}:${keyOf(kind, keys)}`;
      this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    }
    return Promise.resolve(null);
  }

  release(_id: string, keys: ConnectionKeys): void {
    for (const kind of KINDS) {
      const k = `${kind}:${keyOf(kind, keys)}`;
      const n = (this.counts.get(k) ?? 0) - 1;
      if (n > 0) this.counts.set(k, n);
      else this.counts.delete(k);
    }
  }

  close(): void {}
}

// Drops expired members, checks every key against its limit, then adds the member to all.
// Returns 0 when counted, else the 1-based index of the full key.
const ACQUIRE = `
local now = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, expiry, ARGV[3])
  redis.call('PEXPIREAT', key, expiry)
end
return 0`;

export interface RedisCounterOptions {
  redis: Redis;
  prefix: string;
  /** A connection not refreshed for this long stops counting (its instance died). Default 90 s. */
  ttlMs?: number;
  logger?: Logger;
}

export class RedisConnectionCounter implements ConnectionCounter {
  private readonly live = new Map<string, ConnectionKeys>();
  private readonly ttlMs: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly options: RedisCounterOptions,
  ) {
    this.ttlMs = options.ttlMs ?? 90_000;
    this.timer = setInterval(() => void this.refresh(), Math.floor(this.ttlMs / 3));
    this.timer.unref();
  }

  private redisKeys(keys: ConnectionKeys): string[] {
    return KINDS.map((kind) => `${this.options.prefix}conns:${kind}:${keyOf(kind, keys)}`);
  }

  async acquire(id: string, keys: ConnectionKeys): Promise<ConnectionKind | null> {
    const now = Date.now();
    try {
      const full = (await this.options.redis.eval(
        ACQUIRE,
        KINDS.length,
        ...this.redisKeys(keys),
        now,
        now + this.ttlMs,
        id,
        this.limits.perIp,
        this.limits.perUser,
      )) as number;
      if (full > 0) return KINDS[full - 1];
    } catch (err) {
      // Like the rate limiters: Redis being away must not take the chat down with it.
      this.options.logger?.warn({ err }, 'connection counter store failed; allowing the connection');
    }
    this.live.set(id, keys);
    return null;
  }

  release(id: string, keys: ConnectionKeys): void {
    this.live.delete(id);
    const pipeline = this.options.redis.pipeline();
    for (const key of this.redisKeys(keys)) pipeline.zrem(key, id);
    pipeline.exec().catch(() => undefined);
  }

  private async refresh(): Promise<void> {
    if (this.live.size === 0) return;
    const expiry = Date.now() + this.ttlMs;
    const pipeline = this.options.redis.pipeline();
    for (const [id, keys] of this.live) {
      for (const key of this.redisKeys(keys)) {
        pipeline.zadd(key, 'XX', expiry, id);
        pipeline.pexpireat(key, expiry);
      }
    }
    await pipeline.exec().catch(() => undefined);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
