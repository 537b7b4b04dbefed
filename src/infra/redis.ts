/**
 * The one place Redis connections are made, with one set of options: pub/sub, presence and
 * rate limits each get their own connection (a subscribing connection cannot run other
 * commands), but all of them behave the same way when Redis is slow or away.
 */
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisClientOptions {
  /** Shown by `CLIENT LIST`, so an operator can tell the connections apart. */
  name: string;
  /** How long a connection attempt may take. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Commands issued while Redis is away fail at once instead of waiting for the reconnect.
   * For callers that have a fallback (the rate limiter lets actions through). Default false.
   */
  failFast?: boolean;
}

/** A new, not yet connected, ioredis connection (call `connect()`; it reconnects by itself). */
export function createRedisClient(url: string, options: RedisClientOptions): Redis {
  const common: RedisOptions = {
    lazyConnect: true,
    connectionName: `anonymo-${options.name}`,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    // Commands issued while Redis is briefly away wait for the reconnect (in order); after a
    // few failed attempts they fail instead of piling up.
    maxRetriesPerRequest: 3,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    enableOfflineQueue: !options.failFast,
    // ioredis waits this long for a socket to close after disconnect(), and 2 s by default even
    // when it is already closed (a refused connection), which delays process exit.
    disconnectTimeout: 200,
  };
  return new Redis(url, common);
}

/**
 * Closes an ioredis connection: QUIT (waiting at most `timeoutMs` for a Redis that is away),
 * then a hard disconnect only if it is still open. Calling disconnect() on a connection that
 * has already ended leaves a 2 s timer behind in ioredis, which keeps a process (or a test
 * worker) alive after everything else stopped.
 */
export async function closeRedis(conn: Redis, timeoutMs = 1000): Promise<void> {
  if (conn.status === 'end') return;
  if (conn.status === 'wait') {
    // Never connected (lazyConnect): nothing to quit.
    conn.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([conn.quit().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
  // TypeScript narrowed status before the await; QUIT may have ended the connection since.
  if ((conn.status as string) !== 'end') conn.disconnect();
}
