/**
 * The security-related part of the configuration: origins, size limits, operation limits
 * and rate limits. Declared here and spread into config.ts, so the environment is still
 * read and validated in one place.
 */
import { z } from 'zod';
import { int } from '../env';

/** A rate: `points` actions per `durationMs`, counted in fixed windows. */
export interface RateSpec {
  points: number;
  durationMs: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Parses `N/<duration>` such as `10/10s`, `60/1m`, `30/1h` (a bare number is seconds). */
export function parseRateSpec(value: string): RateSpec | null {
  const m = /^\s*(\d+)\s*\/\s*(\d+)?\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!m) return null;
  const points = Number(m[1]);
  const durationMs = Number(m[2] ?? 1) * UNIT_MS[m[3] ?? 's'];
  if (points < 1 || durationMs < 1000 || durationMs > 24 * 3600000) return null;
  return { points, durationMs };
}

const rate = (name: string, fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const spec = parseRateSpec(v);
      if (!spec) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must look like 10/10s (at least 1 action per 1s..24h; units ms, s, m, h)`,
        });
        return z.NEVER;
      }
      return spec;
    });

const origins = z
  .string()
  .default('')
  .transform((v, ctx) => {
    const out: string[] = [];
    for (const raw of v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const origin = normalizeOrigin(raw);
      if (!origin) {
        ctx.addIssue({
          code: 'custom',
          message: `ALLOWED_ORIGINS: "${raw}" is not an origin such as https://chat.example.com`,
        });
        return z.NEVER;
      }
      out.push(origin);
    }
    return out;
  });

/** `scheme://host[:port]` in canonical form, or null when `value` is not an http(s) origin. */
export function normalizeOrigin(value: string): string | null {
  // An origin has no path, credentials, query or fragment; a value with any is not one.
  if (!/^https?:\/\/[^/?#@\s]+\/?$/i.test(value)) return null;
  try {
    return new URL(value).origin;
  } catch {
    return null;
  }
}

/** The environment variables of this module (spread into config.ts's schema). */
export const securityEnv = {
  ALLOWED_ORIGINS: origins,
  HTTP_MAX_BODY_BYTES: int('HTTP_MAX_BODY_BYTES', 1024, 16 * 1024 * 1024).default(64 * 1024),
  WS_MAX_PAYLOAD_BYTES: int('WS_MAX_PAYLOAD_BYTES', 1024, 16 * 1024 * 1024).default(64 * 1024),
  GRAPHQL_MAX_DEPTH: int('GRAPHQL_MAX_DEPTH', 1, 100).default(10),
  GRAPHQL_MAX_ALIASES: int('GRAPHQL_MAX_ALIASES', 0, 1000).default(15),
  GRAPHQL_MAX_DIRECTIVES: int('GRAPHQL_MAX_DIRECTIVES', 0, 1000).default(10),
  GRAPHQL_MAX_TOKENS: int('GRAPHQL_MAX_TOKENS', 100, 100000).default(1000),
  GRAPHQL_MAX_COST: int('GRAPHQL_MAX_COST', 10, 10000000).default(40000),
  GRAPHQL_MAX_DOCUMENT_BYTES: int('GRAPHQL_MAX_DOCUMENT_BYTES', 256, 1024 * 1024).default(8192),
  WS_MAX_CONNECTIONS_PER_IP: int('WS_MAX_CONNECTIONS_PER_IP', 1, 1000000).default(50),
  WS_MAX_CONNECTIONS_PER_USER: int('WS_MAX_CONNECTIONS_PER_USER', 1, 1000000).default(20),
  MAX_REPLAY_MESSAGES: int('MAX_REPLAY_MESSAGES', 1, 10000000).default(10000),
  RATE_LIMITS: z.enum(['on', 'off'], { error: 'RATE_LIMITS must be on or off' }).default('on'),
  RATE_LIMIT_SEND_MESSAGE: rate('RATE_LIMIT_SEND_MESSAGE', '10/10s'),
  RATE_LIMIT_SEND_MESSAGE_IP: rate('RATE_LIMIT_SEND_MESSAGE_IP', '60/10s'),
  RATE_LIMIT_TYPING: rate('RATE_LIMIT_TYPING', '30/10s'),
  RATE_LIMIT_TYPING_IP: rate('RATE_LIMIT_TYPING_IP', '300/10s'),
  RATE_LIMIT_FIND_STRANGER: rate('RATE_LIMIT_FIND_STRANGER', '30/1m'),
  RATE_LIMIT_FIND_STRANGER_IP: rate('RATE_LIMIT_FIND_STRANGER_IP', '300/1m'),
  RATE_LIMIT_REPORT_MESSAGE: rate('RATE_LIMIT_REPORT_MESSAGE', '10/1m'),
  RATE_LIMIT_IDENTITIES_IP: rate('RATE_LIMIT_IDENTITIES_IP', '60/1h'),
  RATE_LIMIT_WS_CONNECTIONS_IP: rate('RATE_LIMIT_WS_CONNECTIONS_IP', '60/1m'),
  RATE_LIMIT_WS_OPERATIONS: rate('RATE_LIMIT_WS_OPERATIONS', '100/1m'),
  RATE_LIMIT_REPLAY_MESSAGES: rate('RATE_LIMIT_REPLAY_MESSAGES', '20000/1m'),
  RATE_LIMIT_HTTP_IP: rate('RATE_LIMIT_HTTP_IP', '600/1m'),
};

type SecurityEnv = { [K in keyof typeof securityEnv]: z.output<(typeof securityEnv)[K]> };

/** Limits on a GraphQL document, checked before it runs, over HTTP and WebSocket alike. */
export interface OperationLimits {
  /** `GRAPHQL_MAX_DEPTH` [10]: nesting of selection sets (introspection excluded). */
  maxDepth: number;
  /** `GRAPHQL_MAX_ALIASES` [15]: aliases per operation. */
  maxAliases: number;
  /** `GRAPHQL_MAX_DIRECTIVES` [10]: directives per operation. */
  maxDirectives: number;
  /** `GRAPHQL_MAX_TOKENS` [1000]: lexical tokens per document; the parser stops at the limit. */
  maxTokens: number;
  /**
   * `GRAPHQL_MAX_COST` [40000]: static cost in graphql-armor's model (object 2, scalar 1, x1.5 per
   * level, x n for a list's size). The web client's page of 100 messages (with reactions and the
   * reply preview) costs about 26,700, so one such page fits with room to spare.
   */
  maxCost: number;
  /**
   * `GRAPHQL_MAX_DOCUMENT_BYTES` [8192]: a longer document (comments and long names included) is
   * refused before it is parsed, over HTTP (400) and WebSocket alike.
   */
  maxDocumentBytes: number;
}

/** Rate limits; every key is counted in its own fixed window. */
export interface RateLimitsConfig {
  /** `RATE_LIMITS` [on]: `off` disables every rate limiter (for load tests only; size, depth and origin limits stay). */
  enabled: boolean;
  /** `RATE_LIMIT_SEND_MESSAGE` [10/10s] per user, `RATE_LIMIT_SEND_MESSAGE_IP` [60/10s] per IP. */
  sendMessage: { user: RateSpec; ip: RateSpec };
  /** `RATE_LIMIT_TYPING` [30/10s] per user, `RATE_LIMIT_TYPING_IP` [300/10s] per IP. */
  typing: { user: RateSpec; ip: RateSpec };
  /**
   * `RATE_LIMIT_FIND_STRANGER` [30/1m] per user, `RATE_LIMIT_FIND_STRANGER_IP` [300/1m] per IP:
   * each findStranger scans the queue (and ends a chat: "Next").
   */
  findStranger: { user: RateSpec; ip: RateSpec };
  /**
   * `RATE_LIMIT_REPORT_MESSAGE` [10/1m] per user: each reportMessage reads the message and
   * writes a report (and may hide the message for everyone).
   */
  reportMessage: { user: RateSpec };
  /** `RATE_LIMIT_IDENTITIES_IP` [60/1h]: new anonymous identities per IP (HTTP and WebSocket). */
  identities: { ip: RateSpec };
  /** `RATE_LIMIT_WS_CONNECTIONS_IP` [60/1m]: WebSocket upgrades per IP. */
  wsConnections: { ip: RateSpec };
  /** `RATE_LIMIT_WS_OPERATIONS` [100/1m]: `subscribe` messages per WebSocket connection. */
  wsOperations: { connection: RateSpec };
  /** `RATE_LIMIT_REPLAY_MESSAGES` [20000/1m]: messages replayed by `messageAdded(after:)` per WebSocket connection. */
  replayMessages: { connection: RateSpec };
  /** `RATE_LIMIT_HTTP_IP` [600/1m]: HTTP GraphQL requests per IP (reads included); the excess gets 429. */
  httpRequests: { ip: RateSpec };
}

/** Limits on open WebSocket connections (counted across instances with REDIS_URL). */
export interface ConnectionLimits {
  /** `WS_MAX_CONNECTIONS_PER_IP` [50]: open WebSockets per IPv4 address or IPv6 /64; the next upgrade gets 429. */
  perIp: number;
  /** `WS_MAX_CONNECTIONS_PER_USER` [20]: open WebSockets per identity; the next upgrade gets 429. */
  perUser: number;
}

export interface SecurityConfig {
  /**
   * `ALLOWED_ORIGINS` [empty]: comma-separated browser origins allowed besides the server's own
   * (its Host header and PUBLIC_URL) and, outside production, http(s)://localhost and loopback.
   */
  allowedOrigins: string[];
  /** The origin of `PUBLIC_URL`, when set. */
  publicOrigin?: string;
  /** Outside production, any localhost / 127.0.0.1 / [::1] origin is allowed. */
  allowLoopbackOrigins: boolean;
  /** `HTTP_MAX_BODY_BYTES` [65536]: larger request bodies get 413. */
  maxBodyBytes: number;
  /** `WS_MAX_PAYLOAD_BYTES` [65536]: a larger WebSocket frame closes the connection with 1009. */
  maxWsPayloadBytes: number;
  /** Field suggestions ("Did you mean ...") are removed from errors in production. */
  hideSuggestions: boolean;
  operations: OperationLimits;
  rateLimits: RateLimitsConfig;
  connections: ConnectionLimits;
  /**
   * `MAX_REPLAY_MESSAGES` [10000]: how far back one `messageAdded(after:)` may replay; further
   * back is BAD_USER_INPUT (load the history with `messages`, then subscribe from its end).
   */
  maxReplayMessages: number;
}

export function securityConfig(e: SecurityEnv, opts: { isProduction: boolean; publicUrl?: string }): SecurityConfig {
  return {
    allowedOrigins: e.ALLOWED_ORIGINS,
    publicOrigin: opts.publicUrl ? (normalizeOrigin(new URL(opts.publicUrl).origin) ?? undefined) : undefined,
    allowLoopbackOrigins: !opts.isProduction,
    maxBodyBytes: e.HTTP_MAX_BODY_BYTES,
    maxWsPayloadBytes: e.WS_MAX_PAYLOAD_BYTES,
    hideSuggestions: opts.isProduction,
    operations: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxCost: e.GRAPHQL_MAX_COST,
      maxDocumentBytes: e.GRAPHQL_MAX_DOCUMENT_BYTES,
    },
    rateLimits: {
      enabled: e.RATE_LIMITS === 'on',
      sendMessage: { user: e.RATE_LIMIT_SEND_MESSAGE, ip: e.RATE_LIMIT_SEND_MESSAGE_IP },
      typing: { user: e.RATE_LIMIT_TYPING, ip: e.RATE_LIMIT_TYPING_IP },
      findStranger: { user: e.RATE_LIMIT_FIND_STRANGER, ip: e.RATE_LIMIT_FIND_STRANGER_IP },
      reportMessage: { user: e.RATE_LIMIT_REPORT_MESSAGE },
      identities: { ip: e.RATE_LIMIT_IDENTITIES_IP },
      wsConnections: { ip: e.RATE_LIMIT_WS_CONNECTIONS_IP },
      wsOperations: { connection: e.RATE_LIMIT_WS_OPERATIONS },
      replayMessages: { connection: e.RATE_LIMIT_REPLAY_MESSAGES },
      httpRequests: { ip: e.RATE_LIMIT_HTTP_IP },
    },
    connections: { perIp: e.WS_MAX_CONNECTIONS_PER_IP, perUser: e.WS_MAX_CONNECTIONS_PER_USER },
    maxReplayMessages: e.MAX_REPLAY_MESSAGES,
  };
}
