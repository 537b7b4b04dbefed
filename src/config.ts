/**
 * Reads and validates the environment once. Every variable Anonymo reads is declared here
 * (and listed in `.env.example` and the README); nothing else in `src/` reads `process.env`.
 */
import { z } from 'zod';
import { bool, emptyAsUndefined, int } from './env';
import { moderationConfig, moderationEnv, type ModerationConfig } from './moderation/moderation.config';
import { powConfig, powEnv, type PowConfig } from './security/pow.config';
import { securityConfig, securityEnv, type SecurityConfig } from './security/security.config';

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int('PORT', 0, 65535).default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  PUBLIC_URL: z.preprocess(emptyAsUndefined, z.url('PUBLIC_URL must be an absolute URL').optional()),
  MONGODB_URI: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^mongodb(\+srv)?:\/\//, 'MONGODB_URI must start with mongodb:// or mongodb+srv://')
      .optional(),
  ),
  DATA_DIR: z.string().min(1).default('./data'),
  SESSION_SECRET: z.preprocess(
    emptyAsUndefined,
    z.string().min(32, 'SESSION_SECRET must be at least 32 characters').optional(),
  ),
  SESSION_COOKIE_SAMESITE: z.enum(['lax', 'strict', 'none']).default('lax'),
  SESSION_COOKIE_SECURE: z.enum(['auto', 'true', 'false']).default('auto'),
  SESSION_TTL_DAYS: int('SESSION_TTL_DAYS', 1, 3650).default(90),
  TRUST_PROXY: z.preprocess(emptyAsUndefined, z.string().optional()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  DB_TIMEOUT_MS: int('DB_TIMEOUT_MS', 100, 60000).default(3000),
  DB_STRATEGY: z.enum(['auto', 'ferretdb', 'mongodb']).default('auto'),
  SHUTDOWN_TIMEOUT_MS: int('SHUTDOWN_TIMEOUT_MS', 100, 60000).default(8000),
  PRESENCE_GRACE_MS: int('PRESENCE_GRACE_MS', 0, 3600000).default(10000),
  MAX_CONNECTIONS: int('MAX_CONNECTIONS', 1, 1000000).default(10000),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: int('MAX_SUBSCRIPTIONS_PER_CONNECTION', 1, 1000).default(25),
  WS_KEEPALIVE_MS: int('WS_KEEPALIVE_MS', 0, 600000).default(15000),
  WS_MAX_BUFFERED_BYTES: int('WS_MAX_BUFFERED_BYTES', 65536, 1 << 30).default(4 * 1024 * 1024),
  WS_UPGRADE_RATE: int('WS_UPGRADE_RATE', 1, 1000000).default(2000),
  WS_UPGRADE_BURST: int('WS_UPGRADE_BURST', 1, 1000000).default(4000),
  REPLAY_CONCURRENCY: int('REPLAY_CONCURRENCY', 1, 10000).default(16),
  REPLAY_QUEUE: int('REPLAY_QUEUE', 0, 1000000).default(20000),
  FERRETDB_BIN: z.preprocess(emptyAsUndefined, z.string().optional()),
  EMBEDDED_DB_SYNC: z.enum(['normal', 'full']).default('normal'),
  GRAPHQL_INTROSPECTION: z.preprocess(emptyAsUndefined, bool('GRAPHQL_INTROSPECTION').optional()),
  ...securityEnv,
  ...moderationEnv,
  ...powEnv,
  REDIS_URL: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^rediss?:\/\//, 'REDIS_URL must start with redis:// or rediss://')
      .optional(),
  ),
  REDIS_PREFIX: z.string().min(1).max(100).default('anonymo:'),
  FANOUT: z.enum(['grouped', 'per-subscriber']).default('grouped'),
  EDIT_WINDOW_SECONDS: int('EDIT_WINDOW_SECONDS', 0, 31536000).default(900),
  RETENTION_DAYS: z.preprocess(emptyAsUndefined, int('RETENTION_DAYS', 1, 36500).optional()),
  PURGE_INTERVAL_MS: int('PURGE_INTERVAL_MS', 50, 60000).default(20000),
  ROOMS_CREATED_PER_DAY: int('ROOMS_CREATED_PER_DAY', 1, 100000).default(10),
  ROOM_MAX_MEMBERS: int('ROOM_MAX_MEMBERS', 2, 1000000).default(1000),
  ROOMS_PER_USER: int('ROOMS_PER_USER', 1, 100000).default(50),
  STRANGER_ANY_AFTER_MS: int('STRANGER_ANY_AFTER_MS', 0, 3600000).default(5000),
  STRANGER_QUEUE_LEASE_MS: int('STRANGER_QUEUE_LEASE_MS', 300, 600000).default(15000),
  METRICS_PORT: z.union([z.literal('off'), int('METRICS_PORT', 0, 65535)]).default(9464),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  DB_COMMAND_SAMPLING: int('DB_COMMAND_SAMPLING', 0, 100).default(10),
});

export type SameSite = 'lax' | 'strict' | 'none';

/** The validated configuration. Defaults are in brackets. */
export interface Config {
  /** `NODE_ENV` [development]: `production` hides stack traces and introspection, requires SESSION_SECRET. */
  env: 'development' | 'production' | 'test';
  isProduction: boolean;
  /** `PORT` [4000]: HTTP and WebSocket port; 0 picks a free one. */
  port: number;
  /** `HOST` [0.0.0.0]: interface to listen on. */
  host: string;
  /** `PUBLIC_URL` [unset]: the server's public origin; makes avatar URLs absolute. */
  publicUrl?: string;
  /** `MONGODB_URI` [unset]: MongoDB to use; unset starts the embedded FerretDB. */
  mongodbUri?: string;
  /** `DATA_DIR` [./data]: embedded database files and the generated development session secret. */
  dataDir: string;
  session: {
    /** `SESSION_SECRET` [generated outside production]: signs the session cookie. */
    secret?: string;
    /** Cookie name, fixed by the contract. */
    cookieName: 'anonymo.sid';
    /** `SESSION_COOKIE_SAMESITE` [lax]: `none` for a frontend on another site (implies secure). */
    sameSite: SameSite;
    /** `SESSION_COOKIE_SECURE` [auto: on in production or with sameSite=none]. */
    secure: boolean;
    /** `SESSION_TTL_DAYS` [90]: an unused identity's session expires after this long (rolling). */
    ttlMs: number;
  };
  /** `TRUST_PROXY` [unset]: express "trust proxy" value (e.g. `1`, `loopback`) behind a TLS proxy. */
  trustProxy?: string | number | boolean;
  /** `LOG_LEVEL` [info; silent under test]. */
  logLevel: string;
  /** `DB_TIMEOUT_MS` [3000]: how long an operation waits for an unreachable database. */
  dbTimeoutMs: number;
  /**
   * `DB_STRATEGY` [auto]: how the database is queried (src/db/strategy.ts). `auto` uses the
   * strategy of the detected server; `mongodb` on FerretDB is valid but slower (CI runs it so
   * the MongoDB path is tested); `ferretdb` on MongoDB works but makes more round trips.
   */
  dbStrategy: 'auto' | 'ferretdb' | 'mongodb';
  /** `SHUTDOWN_TIMEOUT_MS` [8000]: drain budget on SIGTERM before connections are cut. */
  shutdownTimeoutMs: number;
  /** `PRESENCE_GRACE_MS` [10000]: how long a user stays online after their last connection closes. */
  presenceGraceMs: number;
  /** Message lifecycle (src/lifecycle). */
  lifecycle: {
    /** `EDIT_WINDOW_SECONDS` [900]: how long after sending the sender may edit a message. */
    editWindowSeconds: number;
    /** `RETENTION_DAYS` [unset: keep]: every message is removed this many days after it was sent. */
    retentionDays?: number;
    /**
     * `PURGE_INTERVAL_MS` [20000, at most 60000]: how often each instance removes expired messages
     * from the database (they are hidden from readers at once; removed within this interval).
     */
    purgeIntervalMs: number;
  };
  /** `MAX_CONNECTIONS` [10000]: WebSocket connections per server; the next is refused. */
  maxConnections: number;
  /** `MAX_SUBSCRIPTIONS_PER_CONNECTION` [25]. */
  maxSubscriptionsPerConnection: number;
  /** `WS_KEEPALIVE_MS` [15000]: server ping interval; a peer silent for two intervals is dropped. */
  wsKeepAliveMs: number;
  /** `WS_MAX_BUFFERED_BYTES` [4 MiB]: a subscriber this far behind is disconnected (it resumes with `after`). */
  wsMaxBufferedBytes: number;
  /**
   * How the server protects itself when every client reconnects at once (a restart, a deploy):
   * docs/OPERATIONS.md, "Reconnect storms".
   */
  storm: {
    /**
     * `WS_UPGRADE_RATE` [2000] per second, `WS_UPGRADE_BURST` [4000]: WebSocket upgrades admitted
     * by this instance, all addresses together (a token bucket). An upgrade beyond it is
     * answered 503 with `Retry-After` before anything is read for it. Above what one core can
     * upgrade (~500/s with their replays): a refused client comes back a second or more later,
     * while an admitted one merely waits its turn in the event loop; at 500/s the refusals made
     * the last of 10,000 reconnecting clients wait 40 s instead of 20 (docs/PERFORMANCE.md).
     */
    upgradeRate: number;
    upgradeBurst: number;
    /** `REPLAY_CONCURRENCY` [16]: `after` replays running at once on this instance; the next ones wait. */
    replayConcurrency: number;
    /**
     * `REPLAY_QUEUE` [20000]: replays waiting for a slot; a subscribe beyond it is refused with
     * RATE_LIMITED (`retryAfterMs`), and the client subscribes again.
     */
    replayQueue: number;
  };
  /** `FERRETDB_BIN` [.tools/bin/ferretdb]: embedded database binary. */
  ferretdbBin?: string;
  /**
   * `EMBEDDED_DB_SYNC` [normal]: SQLite's `synchronous` for the embedded FerretDB (WAL mode).
   * `normal` survives any process crash (the server's or the database's) and can lose the last
   * writes only on an OS crash or power loss; `full` syncs to disk on every commit, ~3x slower
   * per small write.
   */
  embeddedDbSync: 'normal' | 'full';
  /** `GRAPHQL_INTROSPECTION` [on outside production]. */
  introspection: boolean;
  /**
   * Origins, size, operation, connection and rate limits, each variable documented with its
   * default in security/security.config.ts: `ALLOWED_ORIGINS`, `HTTP_MAX_BODY_BYTES`,
   * `WS_MAX_PAYLOAD_BYTES`, `GRAPHQL_MAX_{DEPTH,ALIASES,DIRECTIVES,TOKENS,COST,DOCUMENT_BYTES}`,
   * `WS_MAX_CONNECTIONS_PER_{IP,USER}`, `MAX_REPLAY_MESSAGES`, `RATE_LIMITS`, `RATE_LIMIT_*`
   * (including `RATE_LIMIT_REPLAY_MESSAGES`, `RATE_LIMIT_HTTP_IP` and `RATE_LIMIT_REPORT_MESSAGE`).
   */
  security: SecurityConfig;
  /**
   * Abuse control, each variable documented with its default in moderation/moderation.config.ts:
   * `MODERATOR_TOKEN`, `REPORT_HIDE_THRESHOLD`, `NETWORK_HASH_SECRET`, `NETWORK_RECORD_DAYS`,
   * `BLOCKLIST_FILE`, `NEW_IDENTITY_LINK_DELAY`, `RATE_LIMIT_ESCALATION_MAX`.
   */
  moderation: ModerationConfig;
  /**
   * Proof of work for new identities, each variable documented with its default in
   * security/pow.config.ts: `POW_MODE` [auto], `POW_DIFFICULTY` [100000].
   */
  pow: PowConfig;
  redis: {
    /** `REDIS_URL` [unset: in-process pub/sub]: publish through Redis so several instances act as one. */
    url?: string;
    /** `REDIS_PREFIX` [anonymo:]: prefix of this deployment's Redis channels. */
    prefix: string;
  };
  /**
   * `FANOUT` [grouped]: `grouped` executes and serialises a subscription event once per group of
   * identical subscribers; `per-subscriber` does it once per subscriber, like stock graphql-ws
   * (kept as the benchmark's baseline).
   */
  fanout: 'grouped' | 'per-subscriber';
  rooms: {
    /** `ROOMS_CREATED_PER_DAY` [10]: rooms one user may create per UTC day (RATE_LIMITED beyond). */
    createdPerDay: number;
    /** `ROOM_MAX_MEMBERS` [1000]: members of one room; joining a full room is FORBIDDEN. */
    maxMembers: number;
    /** `ROOMS_PER_USER` [50]: rooms one user may be a member of at once (FORBIDDEN beyond). */
    perUser: number;
  };
  strangers: {
    /** `STRANGER_ANY_AFTER_MS` [5000]: after this long in the queue a user may be paired without a shared interest. */
    anyAfterMs: number;
    /**
     * `STRANGER_QUEUE_LEASE_MS` [15000]: a queue entry's lease, renewed every third of it by the
     * instances where the user is connected; a crashed instance's entries are gone within it.
     */
    queueLeaseMs: number;
  };
  /**
   * Prometheus metrics, served at `/metrics` on a listener of their own (never on PORT).
   * `METRICS_PORT` [9464]: its port; 0 picks a free one, `off` serves no metrics.
   * `METRICS_HOST` [127.0.0.1]: its interface; loopback, so only the machine (or a sidecar) can scrape.
   * `DB_COMMAND_SAMPLING` [10]: percent of the time (the first second of every ten at 10) during
   * which operations are counted for the database-commands-per-operation histogram. Counting
   * needs an AsyncLocalStorage, which on Node 20 costs every promise in the process while it
   * is on (~9 % of the CPU of an HTTP send); 100 counts every operation. The per-command
   * totals are always complete.
   */
  metrics: { port: number | null; host: string; commandSamplingPercent: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function parseTrustProxy(v: string | undefined): Config['trustProxy'] {
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v;
}

/** Reads the environment; throws a {@link ConfigError} naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`));
  }
  const e = parsed.data;
  const isProduction = e.NODE_ENV === 'production';
  const problems: string[] = [];
  if (isProduction && !e.SESSION_SECRET) {
    problems.push('SESSION_SECRET: required when NODE_ENV=production (at least 32 characters)');
  }
  const secure =
    e.SESSION_COOKIE_SECURE === 'auto'
      ? isProduction || e.SESSION_COOKIE_SAMESITE === 'none'
      : e.SESSION_COOKIE_SECURE === 'true';
  if (e.SESSION_COOKIE_SAMESITE === 'none' && !secure) {
    problems.push(
      'SESSION_COOKIE_SECURE: must be true (or auto) when SESSION_COOKIE_SAMESITE=none; browsers reject it otherwise',
    );
  }
  if (problems.length) throw new ConfigError(problems);

  return {
    env: e.NODE_ENV,
    isProduction,
    port: e.PORT,
    host: e.HOST,
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
    mongodbUri: e.MONGODB_URI,
    dataDir: e.DATA_DIR,
    session: {
      secret: e.SESSION_SECRET,
      cookieName: 'anonymo.sid',
      sameSite: e.SESSION_COOKIE_SAMESITE,
      secure,
      ttlMs: e.SESSION_TTL_DAYS * 24 * 3600 * 1000,
    },
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    logLevel: e.LOG_LEVEL ?? (e.NODE_ENV === 'test' ? 'silent' : 'info'),
    dbTimeoutMs: e.DB_TIMEOUT_MS,
    dbStrategy: e.DB_STRATEGY,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    presenceGraceMs: e.PRESENCE_GRACE_MS,
    lifecycle: {
      editWindowSeconds: e.EDIT_WINDOW_SECONDS,
      retentionDays: e.RETENTION_DAYS,
      purgeIntervalMs: e.PURGE_INTERVAL_MS,
    },
    maxConnections: e.MAX_CONNECTIONS,
    maxSubscriptionsPerConnection: e.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    wsKeepAliveMs: e.WS_KEEPALIVE_MS,
    wsMaxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
    storm: {
      upgradeRate: e.WS_UPGRADE_RATE,
      upgradeBurst: e.WS_UPGRADE_BURST,
      replayConcurrency: e.REPLAY_CONCURRENCY,
      replayQueue: e.REPLAY_QUEUE,
    },
    ferretdbBin: e.FERRETDB_BIN,
    embeddedDbSync: e.EMBEDDED_DB_SYNC,
    introspection: e.GRAPHQL_INTROSPECTION ?? !isProduction,
    security: securityConfig(e, { isProduction, publicUrl: e.PUBLIC_URL }),
    moderation: moderationConfig(e),
    pow: powConfig(e),
    redis: { url: e.REDIS_URL, prefix: e.REDIS_PREFIX },
    fanout: e.FANOUT,
    rooms: { createdPerDay: e.ROOMS_CREATED_PER_DAY, maxMembers: e.ROOM_MAX_MEMBERS, perUser: e.ROOMS_PER_USER },
    strangers: { anyAfterMs: e.STRANGER_ANY_AFTER_MS, queueLeaseMs: e.STRANGER_QUEUE_LEASE_MS },
    metrics: {
      port: e.METRICS_PORT === 'off' ? null : e.METRICS_PORT,
      host: e.METRICS_HOST,
      commandSamplingPercent: e.DB_COMMAND_SAMPLING,
    },
  };
}
