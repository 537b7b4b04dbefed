import type { Redis } from 'ioredis';

/**
 * Closes an ioredis connection: QUIT (waiting at most `timeoutMs` for a Redis that is away),
 * then a hard disconnect only if it is still open. Calling disconnect() on a connection that
 * has already ended leaves a 2 s timer behind in ioredis, which keeps a process (or a test
 * worker) alive after everything else stopped.
 */
export async function closeRedis(conn: Redis, timeoutMs = 1000): Promise<void> {
  if (conn.status === 'end') return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([conn.quit().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
  // TypeScript narrowed status before the await; QUIT may have ended the connection since.
  if ((conn.status as string) !== 'end') conn.disconnect();
}
