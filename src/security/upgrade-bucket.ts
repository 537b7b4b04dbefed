/**
 * WebSocket upgrades admitted by this instance, all addresses together: a token bucket of
 * `ratePerSecond` tokens a second holding at most `burst`. The per-address limits
 * (rate-limit.ts, connection-limits.ts) stop one client; this stops everyone at once, as
 * when a restart sends every client back within seconds (a reconnect storm): each upgrade
 * costs a session read and a user lookup, and unbounded they starve the subscriptions that
 * already made it.
 *
 * A refused upgrade is told when to come back (`Retry-After`). Each refusal books the next
 * free slot after the ones already promised, so refused clients are spread over the time
 * the bucket needs to admit them instead of all returning after the same second. Promises
 * reach at most `maxWaitMs` ahead.
 */
export interface UpgradeBucketOptions {
  ratePerSecond: number;
  burst: number;
  /** Longest wait a refusal is told (ms). Default 30000. */
  maxWaitMs?: number;
}

export class UpgradeBucket {
  private tokens: number;
  private last: number;
  /** When the last slot promised to a refused upgrade comes (ms, Date.now clock). */
  private horizon = 0;
  refused = 0;

  constructor(
    private readonly options: UpgradeBucketOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = options.burst;
    this.last = now();
  }

  /** 0 when the upgrade may proceed (a token taken); else how long (ms) the client should wait. */
  take(): number {
    const now = this.now();
    const { ratePerSecond, burst } = this.options;
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) * ratePerSecond) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    this.refused++;
    const maxWait = this.options.maxWaitMs ?? 30000;
    const slotMs = 1000 / ratePerSecond;
    // The first slot after the tokens run dry, then one slot later per refusal already told.
    const earliest = now + (1 - this.tokens) * slotMs;
    this.horizon = Math.min(Math.max(this.horizon + slotMs, earliest), now + maxWait);
    return Math.max(1, this.horizon - now);
  }
}
