/**
 * Who is online across all instances. PresenceService keeps each instance's own connection
 * counts and grace timers; the registry answers the global questions: "did this user just
 * come online anywhere?", "did their last instance just let go?", "who is online?".
 *
 * - LocalPresenceRegistry: one instance (no REDIS_URL); an in-memory set.
 * - RedisPresenceRegistry: several instances. Per user a set of the instances holding them,
 *   a global set of online users, and per instance a heartbeat key with a TTL. Join and leave
 *   are Lua scripts, so exactly one instance observes each online/offline transition. An
 *   instance that dies stops its heartbeat; any other instance then removes it, and its users
 *   who are not connected elsewhere go offline (once, whoever notices first).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeRedis, createRedisClient } from '../infra/redis';

export interface PresenceRegistry {
  /** This instance now holds the user; true if the user just came online globally. */
  join(userId: string): Promise<boolean>;
  /** This instance let go of the user (after the grace period); true if they just went offline globally. */
  leave(userId: string): Promise<boolean>;
  /** Cached global view (kept current through presence events and a periodic refresh). */
  isOnline(userId: string): boolean;
  onlineUserIds(): Promise<string[]>;
  /** Keeps the cached view in step with a presence event from any instance. */
  note(userId: string, online: boolean): void;
  start(onOffline: (userId: string) => void): Promise<void>;
  stop(): Promise<void>;
}

export class LocalPresenceRegistry implements PresenceRegistry {
  private readonly online = new Set<string>();

  async join(userId: string): Promise<boolean> {
    if (this.online.has(userId)) return false;
    this.online.add(userId);
    return true;
  }

  async leave(userId: string): Promise<boolean> {
    return this.online.delete(userId);
  }

  isOnline(userId: string): boolean {
    return this.online.has(userId);
  }

  async onlineUserIds(): Promise<string[]> {
    return [...this.online];
  }

  note(): void {
    // The local set is the truth already.
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

const JOIN = `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
return redis.call('SADD', KEYS[2], ARGV[2])`;

const LEAVE = `
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('SCARD', KEYS[1]) == 0 then
  return redis.call('SREM', KEYS[2], ARGV[2])
end
return 0`;

type PresenceRedis = Redis & {
  presenceJoin(
    userKey: string,
    online: string,
    instUsers: string,
    instances: string,
    instanceId: string,
    userId: string,
  ): Promise<number>;
  presenceLeave(
    userKey: string,
    online: string,
    instUsers: string,
    instanceId: string,
    userId: string,
  ): Promise<number>;
};

export interface RedisPresenceOptions {
  url: string;
  /** Key prefix shared by the deployment's instances. */
  prefix: string;
  /** An instance silent this long is considered dead. Default: max(grace period, 3 s). */
  heartbeatTtlMs: number;
  logger: Logger;
}

export class RedisPresenceRegistry implements PresenceRegistry {
  readonly instanceId = randomUUID();
  private readonly redis: PresenceRedis;
  private readonly cache = new Set<string>();
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: RedisPresenceOptions) {
    this.redis = createRedisClient(options.url, { name: 'presence' }) as PresenceRedis;
    this.redis.on('error', () => undefined); // reconnects by itself; failures surface per command
    this.redis.defineCommand('presenceJoin', { numberOfKeys: 4, lua: JOIN });
    this.redis.defineCommand('presenceLeave', { numberOfKeys: 3, lua: LEAVE });
  }

  private key(...parts: string[]): string {
    return `${this.options.prefix}presence:${parts.join(':')}`;
  }

  async join(userId: string): Promise<boolean> {
    const became = await this.redis.presenceJoin(
      this.key('user', userId),
      this.key('online'),
      this.key('instance', this.instanceId, 'users'),
      this.key('instances'),
      this.instanceId,
      userId,
    );
    this.cache.add(userId);
    return became === 1;
  }

  async leave(userId: string): Promise<boolean> {
    return (await this.leaveFor(this.instanceId, userId)) === 1;
  }

  private async leaveFor(instanceId: string, userId: string): Promise<number> {
    const went = await this.redis.presenceLeave(
      this.key('user', userId),
      this.key('online'),
      this.key('instance', instanceId, 'users'),
      instanceId,
      userId,
    );
    if (went === 1) this.cache.delete(userId);
    return went;
  }

  isOnline(userId: string): boolean {
    return this.cache.has(userId);
  }

  async onlineUserIds(): Promise<string[]> {
    const ids = await this.redis.smembers(this.key('online'));
    this.replaceCache(ids);
    return ids;
  }

  note(userId: string, online: boolean): void {
    if (online) this.cache.add(userId);
    else this.cache.delete(userId);
  }

  private replaceCache(ids: string[]): void {
    this.cache.clear();
    for (const id of ids) this.cache.add(id);
  }

  async start(onOffline: (userId: string) => void): Promise<void> {
    await this.redis.connect();
    await this.beat();
    await this.onlineUserIds();
    const ttl = this.options.heartbeatTtlMs;
    const every = (ms: number, f: () => Promise<unknown>) => {
      const t = setInterval(() => void f().catch((err) => this.options.logger.warn({ err }, 'presence registry')), ms);
      t.unref();
      this.timers.push(t);
    };
    every(Math.max(250, ttl / 3), () => this.beat());
    every(Math.max(500, ttl / 2), () => this.reap(onOffline));
    every(30000, () => this.onlineUserIds());
  }

  private beat(): Promise<unknown> {
    return this.redis.set(this.key('heartbeat', this.instanceId), '1', 'PX', this.options.heartbeatTtlMs);
  }

  /** Removes instances whose heartbeat expired; their users not held elsewhere go offline. */
  async reap(onOffline: (userId: string) => void): Promise<number> {
    let offline = 0;
    for (const id of await this.redis.smembers(this.key('instances'))) {
      if (id === this.instanceId || (await this.redis.exists(this.key('heartbeat', id)))) continue;
      for (const userId of await this.redis.smembers(this.key('instance', id, 'users'))) {
        if ((await this.leaveFor(id, userId)) === 1) {
          offline++;
          onOffline(userId);
        }
      }
      await this.redis.srem(this.key('instances'), id);
      this.options.logger.info({ instance: id, offline }, 'removed a dead instance from presence');
    }
    return offline;
  }

  async stop(): Promise<void> {
    this.timers.forEach(clearInterval);
    this.timers = [];
    // The heartbeat is left to expire: users reconnecting to other instances within the
    // grace period never appear offline; the rest go offline when another instance reaps.
    await closeRedis(this.redis);
  }
}
