/**
 * The services of one server instance, wired together. Each `createServer` call gets its
 * own set (tests run restarted servers and two instances in one process).
 */
import type { Logger } from 'pino';
import type { Config } from './config';
import type { Database } from './db/database';
import type { FormatOptions } from './errors';
import { messageModel, type MessageDoc } from './messages/message.model';
import { ConversationService } from './conversations/conversation.service';
import { inboxEntryModel, inboxPairModel, readMarkerModel } from './conversations/conversation.model';
import { MessageService } from './messages/message.service';
import { MessageStore } from './messages/message.store';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RedisPresenceRegistry } from './presence/presence.registry';
import { closeRedis } from './util/redis';
import { PresenceService } from './presence/presence.service';
import type { MessagePayload, PubSub } from './pubsub';
import { RealtimeService, type RealtimeOptions } from './realtime/realtime.service';
import { TypingService } from './typing/typing.service';
import { IdentityService } from './users/identity.service';
import { RateLimits } from './security/rate-limit';
import { MemoryConnectionCounter, RedisConnectionCounter, type ConnectionCounter } from './security/connection-limits';
import { userModel } from './users/user.model';
import { UserService } from './users/user.service';

export interface Services {
  config: Config;
  logger: Logger;
  db: Database;
  pubsub: PubSub;
  users: UserService;
  messages: MessageService;
  conversations: ConversationService;
  typing: TypingService;
  identity: IdentityService;
  presence: PresenceService;
  realtime: RealtimeService;
  /** Rate limits (security/rate-limit.ts); in-memory per instance. */
  limits: RateLimits;
  /** Open WebSockets per address and per user (shared through Redis with REDIS_URL). */
  connections: ConnectionCounter;
  /** Stops timers and closes the services' own connections (not the database or pub/sub). */
  close(): Promise<void>;
  /** Absolute or root-relative URL of an avatar. */
  avatarUrl(seed: string): string;
}

export async function createServices(opts: {
  config: Config;
  logger: Logger;
  db: Database;
  pubsub: PubSub;
  format: FormatOptions;
  /** Fan-out hook for metrics (see RealtimeOptions.onDelivered). */
  onDelivered?: RealtimeOptions['onDelivered'];
}): Promise<Services> {
  const { config, logger, db, pubsub } = opts;
  const users = new UserService(userModel(db.connection), { kind: db.kind });
  const store = new MessageStore(messageModel(db.connection), { kind: db.kind });
  const conversations = new ConversationService(
    inboxEntryModel(db.connection),
    inboxPairModel(db.connection),
    readMarkerModel(db.connection),
    store,
    users,
    pubsub,
    db.kind,
  );
  const messages = new MessageService(store, users, pubsub, conversations, {
    max: config.security.maxReplayMessages,
    charge: (connectionId, count) => limits.consume('replayMessages', { connection: connectionId }, count),
  });
  // With REDIS_URL, presence and rate limits are shared by every instance, like pub/sub.
  let redis: Redis | undefined;
  if (config.redis.url) {
    redis = new Redis(config.redis.url, {
      maxRetriesPerRequest: 3,
      connectionName: 'anonymo-limits',
      enableOfflineQueue: false,
      disconnectTimeout: 200,
    });
    redis.on('error', () => undefined); // the limiter lets actions through while Redis is away
  }
  const presence = new PresenceService(userModel(db.connection), users, pubsub, {
    graceMs: config.presenceGraceMs,
    logger,
    registry: config.redis.url
      ? new RedisPresenceRegistry({
          url: config.redis.url,
          prefix: config.redis.prefix,
          heartbeatTtlMs: Math.max(config.presenceGraceMs, 3000),
          logger,
        })
      : undefined,
  });

  const toPayloads = async (docs: MessageDoc[]): Promise<MessagePayload[]> => {
    const ids = [...new Set(docs.flatMap((d) => (d.recipient ? [d.sender, d.recipient] : [d.sender])))];
    const found = await users.getMany(ids);
    const byId = new Map(found.filter((u) => u !== null).map((u) => [u!.id, u!]));
    return docs.map((message) => ({
      message,
      sender: byId.get(message.sender)!,
      recipient: message.recipient ? (byId.get(message.recipient) ?? null) : null,
    }));
  };
  const limits = new RateLimits(config.security.rateLimits, {
    logger,
    factory: redis
      ? (keyPrefix, spec) =>
          new RateLimiterRedis({
            storeClient: redis,
            keyPrefix: `${config.redis.prefix}${keyPrefix}`,
            points: spec.points,
            duration: spec.durationMs / 1000,
          })
      : undefined,
  });
  // RATE_LIMITS=off (load tests, many clients on one address) lifts the per-address counts too.
  const connectionLimits = config.security.rateLimits.enabled
    ? config.security.connections
    : { perIp: Number.MAX_SAFE_INTEGER, perUser: Number.MAX_SAFE_INTEGER };
  const connections: ConnectionCounter = redis
    ? new RedisConnectionCounter(connectionLimits, { redis, prefix: config.redis.prefix, logger })
    : new MemoryConnectionCounter(connectionLimits);
  const realtime = new RealtimeService({
    pubsub,
    users,
    messages: { store, toPayloads },
    format: opts.format,
    maxBufferedBytes: config.wsMaxBufferedBytes,
    logger,
    onDelivered: opts.onDelivered,
    fanout: config.fanout,
  });

  const services: Services = {
    config,
    logger,
    db,
    pubsub,
    users,
    messages,
    conversations,
    typing: new TypingService(pubsub, limits),
    identity: new IdentityService(users, pubsub, limits),
    presence,
    realtime,
    limits,
    connections,
    close: async () => {
      connections.close();
      await presence.stop();
      if (redis) await closeRedis(redis);
    },
    avatarUrl: (seed) => `${config.publicUrl ?? ''}/avatars/${encodeURIComponent(seed)}.svg`,
  };
  realtime.setServices(services);
  return services;
}

/** Creates the indexes the models declare (autoIndex is off so start-up order is explicit). */
export async function ensureIndexes(db: Database): Promise<void> {
  await userModel(db.connection).createIndexes();
  await messageModel(db.connection).createIndexes();
  // No secondary indexes: both are read by _id only.
  await inboxEntryModel(db.connection)
    .createCollection()
    .catch(() => undefined);
  await inboxPairModel(db.connection)
    .createCollection()
    .catch(() => undefined);
  await readMarkerModel(db.connection)
    .createCollection()
    .catch(() => undefined);
}
