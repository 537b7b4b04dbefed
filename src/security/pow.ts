/**
 * Proof of work for new identities, with ALTCHA (`altcha-lib`: challenges made and checked
 * here, no third party, no tracking). Every first visit and every `resetIdentity` creates an
 * identity; a script that drops its cookie creates one per request. `POW_MODE` decides when a
 * new identity must come with a solved challenge: `on` always, `auto` once the network's
 * identity budget (`RATE_LIMIT_IDENTITIES_IP`) is spent (instead of only refusing), `off`
 * never (over the budget is RATE_LIMITED, as before).
 *
 * - A challenge is HMAC-signed (a key derived from the session secret), expires after
 *   {@link CHALLENGE_TTL_MS}, and is bound to the network it was issued to and to its
 *   difficulty, so a cheap challenge from an idle network does not serve a busy one.
 * - The solution travels with the request that creates the identity: the `X-Anonymo-Pow`
 *   header (HTTP), or the `altcha` query parameter of the WebSocket URL; its value is ALTCHA's
 *   payload, base64 of `{ challenge, solution }`.
 * - A solution is spent once: its challenge's signature is claimed with `SET NX PX` in Redis
 *   when REDIS_URL is set (every instance), else in this process's memory (one instance).
 * - Over the budget the difficulty doubles for every further budget's worth of identities the
 *   network asked for in the window, up to {@link MAX_ESCALATION} times the base.
 */
import { createHmac } from 'node:crypto';
import { createChallenge, randomInt, verifySolution, type Challenge, type Solution } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/sha';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { PowRequiredError, type PowRefusal } from '../errors';
import { ipKey } from './ip';
import type { PowConfig } from './pow.config';
import { rateLimitedError, type RateLimits } from './rate-limit';
import { lru } from '../util/lru';

export const POW_HEADER = 'x-anonymo-pow';
export const POW_QUERY_PARAM = 'altcha';
export const CHALLENGE_TTL_MS = 5 * 60_000;
export const MAX_ESCALATION = 64;
const ALGORITHM = 'SHA-256';
const MAX_PAYLOAD_CHARS = 4096;

/** Solutions already used, by their challenge's signature. */
export interface SpentSolutions {
  /** True when `id` was not spent before (and now is, for `ttlMs`). */
  claim(id: string, ttlMs: number): Promise<boolean>;
}

export class MemorySpentSolutions implements SpentSolutions {
  // lru() rather than an LRUCache with `max`: that preallocates 200,000 slots (~9 MiB) at start.
  private readonly spent = lru<string, true>(200_000, { ttl: CHALLENGE_TTL_MS + 60_000 });

  claim(id: string, ttlMs: number): Promise<boolean> {
    if (this.spent.has(id)) return Promise.resolve(false);
    this.spent.set(id, true, { ttl: ttlMs });
    return Promise.resolve(true);
  }
}

/** Shared by every instance; falls back to this instance's memory while Redis fails. */
export class RedisSpentSolutions implements SpentSolutions {
  private readonly fallback = new MemorySpentSolutions();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly logger?: Logger,
  ) {}

  async claim(id: string, ttlMs: number): Promise<boolean> {
    try {
      return (await this.redis.set(`${this.prefix}pow:${id}`, '1', 'PX', ttlMs, 'NX')) === 'OK';
    } catch (err) {
      this.logger?.warn({ err }, 'Redis unavailable for spent proof-of-work solutions; counting in memory');
      return this.fallback.claim(id, ttlMs);
    }
  }
}

export interface IdentityChallengeView {
  /** Whether a new identity from this network needs a solution right now. */
  required: boolean;
  /** ALTCHA's challenge as JSON (give it to altcha-lib's `solveChallenge`). */
  challenge: string;
  expiresAt: Date;
  /** The largest counter the challenge may take. */
  difficulty: number;
}

interface Payload {
  challenge: Challenge;
  solution: Solution;
}

export interface IdentityGateOptions {
  config: PowConfig;
  limits: RateLimits;
  /** Identities per window one network may create before `auto` asks for work. */
  budget: number;
  /** Derives the challenge keys (the session secret: every instance shares it). */
  secret: string;
  spent: SpentSolutions;
}

/** Decides whether a new identity may be created for a client, and makes its challenges. */
export class IdentityGate {
  private readonly signKey: string;
  private readonly keySignKey: string;
  private readonly netKey: string;

  constructor(private readonly o: IdentityGateOptions) {
    const derive = (use: string) => createHmac('sha256', o.secret).update(`anonymo pow ${use}`).digest('hex');
    this.signKey = derive('challenge');
    this.keySignKey = derive('key');
    this.netKey = derive('network');
  }

  get mode(): PowConfig['mode'] {
    return this.o.config.mode;
  }

  /** The network a challenge is bound to, as a keyed hash (never the address). */
  private netTag(ip: string): string {
    return createHmac('sha256', this.netKey).update(ipKey(ip)).digest('hex').slice(0, 16);
  }

  /** The difficulty for a network `over` identities past its budget (0: within it). */
  difficultyFor(over: number): number {
    const steps = Math.max(0, Math.floor((over - 1) / Math.max(1, this.o.budget)));
    return this.o.config.difficulty * Math.min(MAX_ESCALATION, 2 ** Math.min(steps, 30));
  }

  /** A fresh challenge for a new identity from `ip` (null when POW_MODE=off). */
  async challengeFor(ip: string): Promise<IdentityChallengeView | null> {
    if (this.mode === 'off') return null;
    const over = await this.o.limits.peekOver('identities', 'ip', ip);
    const difficulty = this.difficultyFor(over);
    const { challenge, expiresAt } = await this.create(ip, difficulty);
    return { required: this.mode === 'on' || over > 0, challenge, expiresAt, difficulty };
  }

  private async create(ip: string, difficulty: number): Promise<{ challenge: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + CHALLENGE_TTL_MS);
    const challenge = await createChallenge({
      algorithm: ALGORITHM,
      cost: 1,
      counter: randomInt(Math.ceil(difficulty / 2), difficulty),
      deriveKey,
      expiresAt: Math.floor(expiresAt.getTime() / 1000),
      data: { p: 'identity', n: this.netTag(ip), d: difficulty },
      hmacSignatureSecret: this.signKey,
      hmacKeySignatureSecret: this.keySignKey,
    });
    return { challenge: JSON.stringify(challenge), expiresAt };
  }

  private async refuse(ip: string, reason: PowRefusal): Promise<never> {
    const over = await this.o.limits.peekOver('identities', 'ip', ip);
    const { challenge } = await this.create(ip, this.difficultyFor(over));
    throw new PowRequiredError(reason, challenge);
  }

  /**
   * Runs before a new identity is created for a client at `ip` carrying `solution` (the
   * header's or query parameter's value). Returns when it may be created (and has counted it
   * against the network's budget); throws POW_REQUIRED (with a fresh challenge) or, with
   * POW_MODE=off, RATE_LIMITED. `offMode` is the budget check of POW_MODE=off.
   */
  async admit(ip: string, solution: string | undefined, offMode: () => Promise<void>): Promise<void> {
    if (this.mode === 'off') return offMode();
    const checked = solution ? await this.check(ip, solution) : ('missing' as const);
    if (typeof checked === 'number') {
      const { over } = await this.o.limits.countOver('identities', 'ip', ip);
      // One step of slack: the difficulty may have doubled while the client was solving.
      if (checked < this.difficultyFor(over) / 2) return this.refuse(ip, 'too easy');
      return;
    }
    if (this.mode === 'auto') {
      // Within the budget no work is asked (a stale or bad solution does not matter then);
      // this attempt counts either way.
      const { over } = await this.o.limits.countOver('identities', 'ip', ip);
      if (over === 0) return;
    }
    return this.refuse(ip, checked);
  }

  /** The solved challenge's difficulty once verified and claimed (spent), else why not. */
  private async check(ip: string, solution: string): Promise<number | PowRefusal> {
    const payload = parsePayload(solution);
    if (!payload) return 'malformed';
    const data = payload.challenge.parameters.data ?? {};
    let result;
    try {
      result = await verifySolution({
        challenge: payload.challenge,
        solution: payload.solution,
        deriveKey,
        hmacSignatureSecret: this.signKey,
        hmacKeySignatureSecret: this.keySignKey,
      });
    } catch {
      return 'invalid';
    }
    if (result.expired) return 'expired';
    if (!result.verified || data.p !== 'identity' || data.n !== this.netTag(ip)) return 'invalid';
    const expiresAtMs = (payload.challenge.parameters.expiresAt ?? 0) * 1000;
    if (!(await this.o.spent.claim(payload.challenge.signature!, Math.max(1000, expiresAtMs - Date.now() + 1000)))) {
      return 'replayed';
    }
    const difficulty = Number(data.d);
    return Number.isFinite(difficulty) ? difficulty : 'invalid';
  }
}

/** ALTCHA's payload (base64 JSON of `{ challenge, solution }`), or null when it is not one. */
function parsePayload(value: string): Payload | null {
  if (value.length > MAX_PAYLOAD_CHARS || !/^[A-Za-z0-9+/=_-]+$/.test(value)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  } catch {
    return null;
  }
  const p = parsed as Partial<Payload> | null;
  const params = p?.challenge?.parameters;
  const ok =
    typeof p === 'object' &&
    p !== null &&
    typeof p.challenge?.signature === 'string' &&
    /^[0-9a-f]{16,128}$/.test(p.challenge.signature) &&
    typeof params === 'object' &&
    params !== null &&
    params.algorithm === ALGORITHM &&
    typeof params.expiresAt === 'number' &&
    typeof params.data === 'object' &&
    params.data !== null &&
    typeof p.solution === 'object' &&
    p.solution !== null &&
    Number.isSafeInteger(p.solution.counter) &&
    typeof p.solution.derivedKey === 'string' &&
    /^[0-9a-f]{1,256}$/.test(p.solution.derivedKey);
  return ok ? (p as Payload) : null;
}

/** The RATE_LIMITED refusal of POW_MODE=off over HTTP (the request is answered 429). */
export async function httpIdentityBudget(limits: RateLimits, ip: string): Promise<void> {
  const wait = await limits.retryAfter('identities', { ip });
  if (wait > 0) throw rateLimitedError('identities', wait, true);
}
