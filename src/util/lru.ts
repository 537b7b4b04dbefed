import { LRUCache } from 'lru-cache';

/**
 * A count-bounded LRU cache whose storage grows with use.
 *
 * lru-cache preallocates its index arrays for `max` entries when it is constructed (keys,
 * values, two links and a free list; two more arrays with a TTL: 28 to 44 bytes a slot), so
 * the twenty-odd caches a server sized for 100,000 users holds cost about 70 MiB of RSS
 * before the first request, and that baseline is what a fan-out server's memory is compared
 * on. Bounding the count through `maxSize` with every entry of size 1 keeps the same bound
 * and eviction order with arrays that grow as entries arrive (lru-cache's own advice for
 * large, mostly empty caches).
 */
export function lru<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(
  max: number,
  options: { ttl?: number; dispose?: LRUCache.Disposer<K, V>; updateAgeOnGet?: boolean } = {},
): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: max, sizeCalculation: () => 1 });
}
