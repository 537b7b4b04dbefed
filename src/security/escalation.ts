/**
 * Escalating cooldowns: a key (a user, an address) that keeps hitting a rate limit waits
 * longer each time, doubling up to a maximum, and is forgiven step by step while it behaves.
 * A client that honours `retryAfterMs` never notices; a bot hammering the API through its
 * refusals quickly waits the maximum. Counted per instance (in memory).
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

export class Escalation {
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
