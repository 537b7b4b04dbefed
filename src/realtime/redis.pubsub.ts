/**
 * Pub/sub across instances through Redis (ioredis): what one instance publishes reaches
 * the subscribers of every instance sharing the Redis server and prefix.
 *
 * - One publishing and one subscribing connection per instance, whatever the number of
 *   topics and subscribers; a Redis channel is subscribed only while this instance has a
 *   listener for its topic (the realtime engine keeps one listener per topic).
 * - Order: all publishes of an instance go down one connection, and Redis delivers a
 *   channel's messages in the order it received them, so per topic and publisher the
 *   order is kept. Across publishers, MessageChannel orders by sequence number.
 * - A message lost while Redis is away only delays delivery of conversation messages:
 *   the next event of the conversation makes MessageChannel read the gap from the database.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { closeRedis, createRedisClient } from '../infra/redis';
import { decodeEvent, encodeEvent } from './codec';
import type { Listener, PayloadOf, PubSub, TopicName } from './pubsub';

export interface RedisPubSubOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  url: string;
  /** Prepended to every channel name, so several deployments (or test runs) can share a Redis. Default `anonymo:`. */
  prefix?: string;
  logger?: Logger;
  /** How long start-up waits for Redis before failing. Default 5000 ms. */
  connectTimeoutMs?: number;
}

export class RedisPubSub implements PubSub {
  private readonly prefix: string;
  private readonly listeners = new Map<string, Set<Listener<never>>>();
  /** Channels with a SUBSCRIBE in flight or done; the promise settles when it is live. */
  private readonly subscribed = new Map<string, Promise<unknown>>();
  private closed = false;

  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    options: RedisPubSubOptions,
  ) {
    this.prefix = options.prefix ?? 'anonymo:';
    sub.on('message', (channel: string, message: string) => this.deliver(channel, message));
  }

  /** Connects both connections; rejects (and leaves nothing running) when Redis is unreachable. */
  static async connect(options: RedisPubSubOptions): Promise<RedisPubSub> {
    const logger = options.logger;
    const pub = createRedisClient(options.url, { name: 'pub', connectTimeoutMs: options.connectTimeoutMs });
    const sub = createRedisClient(options.url, { name: 'sub', connectTimeoutMs: options.connectTimeoutMs });
    let lastError: Error | undefined;
    for (const [name, conn] of [
      ['publisher', pub],
      ['subscriber', sub],
    ] as const) {
      let down = false;
      conn.on('error', (err: Error) => {
        lastError = err;
        // ioredis retries on its own; one line per outage, not one per attempt.
        if (!down) logger?.warn({ err: err.message, connection: name }, 'Redis connection error');
        down = true;
      });
      conn.on('ready', () => {
        if (down) logger?.info({ connection: name }, 'Redis reconnected');
        down = false;
      });
    }
    try {
      await Promise.all([pub.connect(), sub.connect()]);
    } catch (err) {
      pub.disconnect();
      sub.disconnect();
      throw new Error(`Cannot connect to Redis at REDIS_URL: ${(lastError ?? (err as Error)).message}`, { cause: err });
    }
    return new RedisPubSub(pub, sub, options);
  }

  private deliver(channel: string, message: string): void {
    const set = this.listeners.get(channel);
    if (!set?.size) return;
    let payload: unknown;
    try {
      payload = decodeEvent(message);
    } catch {
      return; // not ours: someone else published on our prefix
    }
    for (const l of [...set] as Array<Listener<unknown>>) l(payload);
  }

  async publish<K extends TopicName>(topic: K, payload: PayloadOf<K>): Promise<void> {
    if (this.closed) return;
    await this.pub.publish(this.prefix + topic, encodeEvent(payload));
  }

  async subscribe<K extends TopicName>(topic: K, listener: Listener<PayloadOf<K>>): Promise<() => void> {
    if (this.closed) throw new Error('pub/sub closed');
    const channel = this.prefix + topic;
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(listener);
    let live = this.subscribed.get(channel);
    if (!live) {
      live = this.sub.subscribe(channel);
      this.subscribed.set(channel, live);
    }
    try {
      await live;
    } catch (err) {
      this.remove(channel, listener);
      throw err;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.remove(channel, listener);
    };
  }

  private remove(channel: string, listener: Listener<never>): void {
    const set = this.listeners.get(channel);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(channel);
    this.subscribed.delete(channel);
    // Commands on the connection run in order, so a SUBSCRIBE issued after this one
    // (a new listener arriving) still wins.
    if (!this.closed) this.sub.unsubscribe(channel).catch(() => undefined);
  }

  /** Channels this instance is subscribed to (leak checks). */
  get channelCount(): number {
    return this.subscribed.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.subscribed.clear();
    // QUIT waits for Redis to answer; a Redis that is away must not hold up shutdown.
    await Promise.all([closeRedis(this.pub), closeRedis(this.sub)]);
  }
}
