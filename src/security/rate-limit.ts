/**
 * Rate limits on the actions an open anonymous chat attracts abuse on, counted with
 * rate-limiter-flexible. Each limit is counted per key kind (user, IP, connection); an action
 * passes only when every key has points left. Counters live in memory (per instance) unless
 * a factory for a shared store is passed: with Redis, `(prefix, spec) => new
 * RateLimiterRedis({ storeClient, keyPrefix: prefix, points: spec.points, duration: spec.durationMs / 1000 })`
 * makes the limits global across instances without touching any caller.
 */
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimitedError } from '../errors';
import type { EscalationStore } from './escalation';
import { ipKey } from './ip';
import type { RateLimitsConfig, RateSpec } from './security.config';

/** The part of a rate-limiter-flexible limiter used here (memory, Redis, ...). */
export interface Limiter {
  consume(key: string, points?: number): Promise<RateLimiterRes>;
  /** The key's current count, without counting (null: nothing counted yet). */
  get?(key: string): Promise<RateLimiterRes | null>;
}

/** Creates the limiter for one limit and key kind; `keyPrefix` is unique per pair. */
export type LimiterFactory = (keyPrefix: string, spec: RateSpec) => Limiter;

export const memoryLimiter: LimiterFactory = (keyPrefix, spec) =>
  new RateLimiterMemory({ keyPrefix, points: spec.points, duration: spec.durationMs / 1000 });

export type LimitName = Exclude<keyof RateLimitsConfig, 'enabled'>;
export type KeyKind = 'user' | 'ip' | 'connection';
export type LimitKeys = Partial<Record<KeyKind, string>>;

const WHAT: Record<LimitName, string> = {
  sendMessage: 'Too many messages',
  typing: 'Too many typing updates',
  findStranger: 'Too many stranger searches',
  reportMessage: 'Too many reports',
  identities: 'Too many new identities from this address',
  wsConnections: 'Too many new connections from this address',
  wsOperations: 'Too many operations on this connection',
  replayMessages: 'Too many replayed messages on this connection; load older history with messages',
  httpRequests: 'Too many requests from this address',
};

export interface RateLimitsOptions {
  /** Where counters live. Default: this process's memory. */
  factory?: LimiterFactory;
  /** Store failures are logged here; the action is then allowed (see {@link RateLimits.retryAfter}). */
  logger?: Logger;
  /** Escalating cooldowns for keys that keep hitting a limit through {@link RateLimits.consume}. */
  escalation?: EscalationStore;
}

export class RateLimits {
  private readonly limiters = new Map<string, Limiter>();

  constructor(
    private readonly config: RateLimitsConfig,
    private readonly options: RateLimitsOptions = {},
  ) {
    const factory = options.factory ?? memoryLimiter;
    if (!config.enabled) return;
    for (const name of Object.keys(WHAT) as LimitName[]) {
      for (const [kind, spec] of Object.entries(config[name]) as Array<[KeyKind, RateSpec]>) {
        this.limiters.set(`${name}:${kind}`, factory(`anonymo:rl:${name}:${kind}`, spec));
      }
    }
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /**
   * Counts one action against every key given; returns 0 when it may proceed, else the
   * milliseconds until it may be retried. A counter store that fails (e.g. Redis down)
   * lets the action through: an outage of the limiter must not take the chat down with it.
   */
  async retryAfter(name: LimitName, keys: LimitKeys, points = 1): Promise<number> {
    if (!this.config.enabled) return 0;
    return Math.max(0, ...(await this.waits(name, keys, points)).map((w) => w.ms));
  }

  /** {@link retryAfter} per key. */
  private async waits(name: LimitName, keys: LimitKeys, points = 1): Promise<Array<{ tag: string; ms: number }>> {
    return Promise.all(
      (Object.entries(keys) as Array<[KeyKind, string | undefined]>).map(async ([kind, key]) => {
        const tag = `${name}:${kind}:${key}`;
        const limiter = this.limiters.get(`${name}:${kind}`);
        if (!limiter || !key) return { tag, ms: 0 };
        try {
          await limiter.consume(kind === 'ip' ? ipKey(key) : key, points);
          return { tag, ms: 0 };
        } catch (res) {
          if (res instanceof RateLimiterRes) return { tag, ms: Math.max(1, res.msBeforeNext) };
          this.options.logger?.warn({ err: res, limit: name }, 'rate limiter store failed; allowing the action');
          return { tag, ms: 0 };
        }
      }),
    );
  }

  /** Like {@link retryAfter}, but throws RATE_LIMITED (with `retryAfterMs`) when over the limit. */
  async consume(name: LimitName, keys: LimitKeys, points = 1): Promise<void> {
    const escalation = this.config.enabled ? this.options.escalation : undefined;
    if (!escalation) {
      const ms = await this.retryAfter(name, keys, points);
      if (ms > 0) throw rateLimitedError(name, ms);
      return;
    }
    // A key still cooling down is refused without counting, and its cooldown grows; only the
    // keys actually refused escalate (one user's flood must not lengthen their neighbours' waits).
    const tags = Object.entries(keys).flatMap(([k, v]) => (v ? [`${name}:${k}:${v}`] : []));
    const cooling = await Promise.all(tags.map(async (tag) => ({ tag, ms: await escalation.remaining(tag) })));
    let refused = cooling.filter((w) => w.ms > 0);
    if (refused.length === 0) refused = (await this.waits(name, keys, points)).filter((w) => w.ms > 0);
    if (refused.length === 0) return;
    const waits = await Promise.all(refused.map(async (w) => escalation.strike(w.tag, w.ms)));
    throw rateLimitedError(name, Math.max(...waits));
  }

  /**
   * Counts one action against one key of one limit without refusing it; returns how many
   * actions over the budget this one is (0: within it) and the window's remaining time. For
   * limits whose overflow is not refused but made costlier (proof of work for new identities).
   * With limits off, or a failed counter store, every action is within budget.
   */
  async countOver(name: LimitName, kind: KeyKind, key: string): Promise<{ over: number; resetMs: number }> {
    const limiter = this.limiters.get(`${name}:${kind}`);
    const spec = (this.config[name] as Partial<Record<KeyKind, RateSpec>>)[kind];
    if (!this.config.enabled || !limiter || !spec) return { over: 0, resetMs: 0 };
    try {
      const res = await limiter.consume(kind === 'ip' ? ipKey(key) : key);
      return { over: 0, resetMs: res.msBeforeNext };
    } catch (res) {
      if (res instanceof RateLimiterRes) {
        return { over: Math.max(1, res.consumedPoints - spec.points), resetMs: res.msBeforeNext };
      }
      this.options.logger?.warn({ err: res, limit: name }, 'rate limiter store failed; allowing the action');
      return { over: 0, resetMs: 0 };
    }
  }

  /**
   * How many actions over the budget one more action of this key would be (0: within it),
   * without counting anything. With limits off or a failed counter store: 0.
   */
  async peekOver(name: LimitName, kind: KeyKind, key: string): Promise<number> {
    const limiter = this.limiters.get(`${name}:${kind}`);
    const spec = (this.config[name] as Partial<Record<KeyKind, RateSpec>>)[kind];
    if (!this.config.enabled || !limiter?.get || !spec) return 0;
    try {
      const res = await limiter.get(kind === 'ip' ? ipKey(key) : key);
      return Math.max(0, (res?.consumedPoints ?? 0) + 1 - spec.points);
    } catch {
      return 0;
    }
  }

  /** {@link consume} for an operation of the viewer: keyed by their user id and their address. */
  async consumeFor(name: LimitName, ctx: { user: { id: string }; ip: string }): Promise<void> {
    await this.consume(name, { user: ctx.user.id, ip: ctx.ip });
  }
}

/**
 * The RATE_LIMITED error. With `refuseRequest`, Apollo answers the whole HTTP request with
 * 429 and Retry-After (for a request that cannot proceed at all, such as one that would
 * create an identity); otherwise it is an ordinary GraphQL error of one operation.
 */
export function rateLimitedError(name: LimitName, retryAfterMs: number, refuseRequest = false): RateLimitedError {
  const error = new RateLimitedError(`${WHAT[name]}; retry in ${Math.ceil(retryAfterMs / 1000)} s`, retryAfterMs);
  if (refuseRequest) {
    (error.extensions as Record<string, unknown>).http = {
      status: 429,
      headers: new Map([['retry-after', String(Math.ceil(retryAfterMs / 1000))]]),
    };
  }
  return error;
}
