/** Starts the server the fuzzer talks to, with a logger that keeps its error-level lines. */
import { Writable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { createLogger } from '../../src/logger';
import type { AnonymoServer } from '../../src/app';
import type { FuzzTarget } from './fuzzer';

/** A logger for the fuzzed server (errors only: info lines for 100,000 requests are noise) and what it wrote. */
export function errorLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger({ logLevel: 'error' }, sink), lines };
}

/**
 * Also counts what libraries print with console.error (graphql-ws does, for errors in its
 * message handling) as error log lines. Returns the function that restores console.error.
 */
export function captureConsoleErrors(lines: string[]): () => void {
  const original = console.error;
  console.error = (...args: unknown[]) => {
    lines.push(
      `console.error: ${args.map((a) => (a instanceof Error ? (a.stack ?? a.message) : String(a))).join(' ')}`,
    );
  };
  return () => {
    console.error = original;
  };
}

/** One bounded cache of the server, as found by {@link trackCaches}. */
export interface CacheInfo {
  /** Where it was first written (file:line of the caller of `set`). */
  site: string;
  size: number;
  /** Its entry bound (`max`, or `maxSize` for caches sized 1 per entry; 0: none). */
  max: number;
  /** Size-bounded caches: their computed size and bound (e.g. bytes). */
  calculatedSize?: number;
  maxSize?: number;
  /** Heap freed by emptying it at the end of the run (after a full GC), in MiB. */
  freedMiB?: number;
}

/**
 * Finds the bounded caches (every lru-cache instance: the server's own and Apollo's document
 * store) of the process by noting each one the first time something is stored in it, so the
 * fuzzer can report their sizes against their bounds and measure the heap without them.
 * The server's caches are meant to fill up to their bounds; what matters is that nothing else
 * grows. Test-only instrumentation: the server never sees it. Returns the census, a clear (of
 * one cache, by its index in the census, or of all) and the function that restores lru-cache.
 */
export function trackCaches(): { census(): CacheInfo[]; clear(index?: number): void; restore(): void } {
  type Cache = LRUCache<object, object>;
  // Weakly held: a cache whose owner is gone (a channel without subscribers) must be
  // collected as it would be without the fuzzer.
  const seen = new WeakSet<Cache>();
  let tracked: Array<{ ref: WeakRef<Cache>; site: string }> = [];
  /** The caches of the last census, in its order (what `clear(index)` refers to). */
  let counted: Cache[] = [];
  const alive = () => (tracked = tracked.filter((t) => t.ref.deref()));
  const proto = LRUCache.prototype as unknown as { set: (...args: unknown[]) => unknown };
  const originalSet = proto.set;
  proto.set = function (this: Cache, ...args: unknown[]) {
    if (!seen.has(this)) {
      seen.add(this);
      tracked.push({ ref: new WeakRef(this), site: callerSite(new Error().stack ?? '') });
      if (tracked.length % 1000 === 0) alive();
    }
    return originalSet.apply(this, args);
  };
  return {
    census: () => {
      const caches = alive().flatMap(({ ref, site }) => {
        const cache = ref.deref();
        return cache ? [{ cache, site }] : [];
      });
      counted = caches.map((c) => c.cache);
      return caches.map(({ cache, site }) => {
        const unitSized = cache.maxSize > 0 && cache.max === 0 && cache.calculatedSize === cache.size;
        return {
          site,
          size: cache.size,
          max: cache.max || (unitSized ? cache.maxSize : 0),
          ...(cache.maxSize && !unitSized ? { calculatedSize: cache.calculatedSize, maxSize: cache.maxSize } : {}),
        };
      });
    },
    clear: (index) => {
      if (index !== undefined) return void counted[index]?.clear();
      for (const { ref } of alive()) ref.deref()?.clear();
      counted = [];
    },
    restore: () => {
      proto.set = originalSet;
      tracked = [];
      counted = [];
    },
  };
}

/** The first stack frame outside lru-cache and its Apollo wrapper: the cache's owner. */
function callerSite(stack: string): string {
  const frames = stack.split('\n').slice(2);
  const frame =
    frames.find(
      (f) => !/node_modules[\\/](lru-cache|@apollo[\\/]utils\.keyvaluecache)[\\/]/.test(f) && !/trackCaches/.test(f),
    ) ??
    frames[0] ??
    '?';
  const m = /\(?([^()]+):(\d+):\d+\)?$/.exec(frame.trim());
  if (!m) return frame.trim();
  const file = m[1].replace(/^.*?[\\/](src|node_modules)[\\/]/, '$1/');
  return `${file}:${m[2]}`;
}

export function fuzzTarget(
  server: AnonymoServer,
  mongodbUri: string,
  lines: string[],
  caches?: { census(): CacheInfo[]; clear(index?: number): void },
): FuzzTarget {
  return {
    caches,
    url: server.url,
    wsUrl: server.wsUrl,
    mongodbUri,
    live: () => {
      const s = server.services.realtime.stats();
      return { connections: server.stats().connections, subscribers: s.subscribers, plans: s.plans };
    },
    errorLogs: () => lines,
  };
}

/** Environment of the fuzzed server: limits on (their code paths run) but far away, except the document limits. */
export const FUZZ_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  SESSION_SECRET: 'fuzz-secret-fuzz-secret-fuzz-secret-0123',
  // Plain HTTP on loopback: a Secure cookie would never be set.
  SESSION_COOKIE_SECURE: 'false',
  PORT: '0',
  HOST: '127.0.0.1',
  METRICS_PORT: '0',
  PRESENCE_GRACE_MS: '200',
  MAX_REPLAY_MESSAGES: '10000',
  RATE_LIMIT_SEND_MESSAGE: '100000/1s',
  RATE_LIMIT_SEND_MESSAGE_IP: '100000/1s',
  RATE_LIMIT_TYPING: '100000/1s',
  RATE_LIMIT_TYPING_IP: '100000/1s',
  RATE_LIMIT_REPORT_MESSAGE: '100000/1s',
  RATE_LIMIT_IDENTITIES_IP: '100000/1s',
  RATE_LIMIT_WS_CONNECTIONS_IP: '100000/1s',
  RATE_LIMIT_WS_OPERATIONS: '100000/1s',
  RATE_LIMIT_REPLAY_MESSAGES: '100000/1s',
  RATE_LIMIT_HTTP_IP: '100000/1s',
  WS_MAX_CONNECTIONS_PER_IP: '100000',
  WS_MAX_CONNECTIONS_PER_USER: '100000',
};
