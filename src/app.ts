/**
 * The composition root: the one place that builds an Anonymo server, in this order and with
 * plain constructor arguments:
 *
 *   config → infrastructure (pub/sub, database, Redis) → domain services → resolvers and
 *   schema → realtime engine (with each domain's channel kinds) → transports (HTTP, WebSocket)
 *
 * Nothing is patched in afterwards; each part receives exactly what it uses. Each
 * `createServer` call builds its own set (tests run restarted servers and two instances in
 * one process), so nothing here is a module-level singleton.
 */
import 'reflect-metadata';
import './sessions/session.types';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApolloServer } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { afterBlocksLoaded } from './blocks/block.channel';
import { blockLogModel } from './blocks/block.model';
import { BlockResolver } from './blocks/block.resolver';
import { BlockService } from './blocks/block.service';
import type { Config } from './config';
import type { Context } from './context';
import { inboxChannelKind, readChannelKind } from './conversations/conversation.channel';
import { inboxEntryModel, inboxPairModel, readMarkerModel } from './conversations/conversation.model';
import { ConversationResolver } from './conversations/conversation.resolver';
import { readTopic } from './conversations/conversation.events';
import { ConversationService } from './conversations/conversation.service';
import { counterModel, ExactCounter } from './db/counter';
import { connectDatabase, type Database } from './db/database';
import { ForbiddenError, type FormatOptions } from './errors';
import { closeRedis, createRedisClient } from './infra/redis';
import { createLogger } from './logger';
import { updateChannelKind } from './lifecycle/lifecycle.channel';
import { conversationSettingModel, messageExpiryModel, reactionModel, updateModel } from './lifecycle/lifecycle.model';
import {
  ConversationTtlResolver,
  LifecycleResolver,
  ReactionResolver,
  RoomTtlResolver,
} from './lifecycle/lifecycle.resolver';
import { LifecycleService } from './lifecycle/lifecycle.service';
import { ForgetService } from './lifecycle/forget.service';
import { GHOST_USER } from './lifecycle/ghost';
import { PurgeJob } from './lifecycle/purge.job';
import { ConversationSettings, SendFields } from './lifecycle/settings';
import { UpdateLog } from './lifecycle/update-log';
import { roomKey, roomOfKey } from './messages/conversation';
import { messageTopic } from './messages/message.events';
import { messageChannelKind } from './messages/message.channel';
import { MessageExpiry } from './messages/message.expiry';
import type { MessagePayload } from './messages/message.events';
import { messageModel, type MessageDoc } from './messages/message.model';
import { MessageResolver } from './messages/message.resolver';
import { MessageService } from './messages/message.service';
import { MessageStore } from './messages/message.store';
import { createHmac } from 'node:crypto';
import { AuditLog } from './moderation/audit';
import { BanCheck } from './moderation/ban.check';
import { ContentCheck, loadBlocklist } from './moderation/content.check';
import { SlowMode } from './moderation/slow-mode';
import { BanService } from './moderation/ban.service';
import { AbusePolicy } from './moderation/message-policy';
import { ensureModerationIndexes, moderationModels } from './moderation/moderation.model';
import { ModerationResolver } from './moderation/moderation.resolver';
import { ModeratorAuth } from './moderation/moderator';
import { ReportService } from './moderation/report.service';
import { Metrics } from './observability/metrics';
import { startMetricsServer, type MetricsServer } from './observability/metrics-server';
import { CONVERSATIONS_MAX } from './conversations/conversation.service';
import { DEFAULT_PAGE_SIZE } from './messages/message.service';
import { ONLINE_USERS_MAX } from './presence/presence.service';
import { MemoryConnectionCounter, RedisConnectionCounter, type ConnectionCounter } from './security/connection-limits';
import type { DefaultListSizes } from './security/cost';
import { presenceChannelKind } from './presence/presence.channel';
import { RedisPresenceRegistry } from './presence/presence.registry';
import { PresenceResolver } from './presence/presence.resolver';
import { PresenceService } from './presence/presence.service';
import { RealtimeEngine } from './realtime/engine';
import { roomMemberModel, roomModel, roomSlugModel } from './rooms/room.model';
import { MessageRoomResolver, RoomResolver } from './rooms/room.resolver';
import { RoomService } from './rooms/room.service';
import { LocalPubSub, type PubSub } from './realtime/pubsub';
import { RedisPubSub } from './realtime/redis.pubsub';
import { createSchema } from './schema';
import type { TrustFn } from './security/ip';
import { OriginPolicy } from './security/origin';
import { Escalation, RedisEscalation } from './security/escalation';
import { IdentityGate, MemorySpentSolutions, RedisSpentSolutions } from './security/pow';
import { RateLimits } from './security/rate-limit';
import { createSessionMiddleware } from './sessions/identity';
import { SESSION_REVOKED_TOPIC } from './sessions/session.events';
import { strangerChannelKind } from './strangers/stranger.channel';
import { DbStrangerMatcher, type StrangerMatcher } from './strangers/stranger.matcher';
import { strangerEndedModel, strangerPairModel, strangerQueueModel } from './strangers/stranger.model';
import { RedisStrangerMatcher } from './strangers/stranger.redis';
import { StrangerResolver } from './strangers/stranger.resolver';
import { StrangerService } from './strangers/stranger.service';
import { MongoSessionStore } from './sessions/session.store';
import { HttpDrain } from './transport/http-drain';
import { createExpressApp, startHttpTransport } from './transport/http';
import { sharedContext } from './transport/context';
import { createWsTransport, type WsTransport } from './transport/ws';
import { typingChannelKind } from './typing/typing.channel';
import { typingTopic } from './typing/typing.events';
import { ROOM_LEFT_TOPIC } from './rooms/room.events';
import { updateTopic } from './lifecycle/lifecycle.events';
import { TypingResolver } from './typing/typing.resolver';
import { TypingService } from './typing/typing.service';
import { IdentityService } from './users/identity.service';
import { userModel } from './users/user.model';
import { UserResolver } from './users/user.resolver';
import { UserService } from './users/user.service';
import { OperationValidator } from './validation';

export interface ServerOptions {
  config: Config;
  /** Where the database is (resolved by main.ts: MONGODB_URI or the embedded one). */
  mongodbUri: string;
  /** Signs session cookies (resolved by main.ts: SESSION_SECRET or the generated one). */
  sessionSecret: string;
  logger?: Logger;
  /** Cross-instance transport; default from the config (Redis with REDIS_URL, else in-process). */
  pubsub?: PubSub;
}

/** What one server is made of: exposed on the server handle for main.ts, tests and the benchmark. */
export interface AppServices {
  config: Config;
  logger: Logger;
  db: Database;
  pubsub: PubSub;
  limits: RateLimits;
  users: UserService;
  messages: MessageService;
  lifecycle: LifecycleService;
  purge: PurgeJob;
  conversations: ConversationService;
  presence: PresenceService;
  typing: TypingService;
  identity: IdentityService;
  blocks: BlockService;
  bans: BanService;
  reports: ReportService;
  rooms: RoomService;
  strangers: StrangerService;
  realtime: RealtimeEngine;
}

export interface AnonymoServer {
  /** http://host:port/graphql */
  url: string;
  /** ws://host:port/graphql */
  wsUrl: string;
  port: number;
  services: AppServices;
  /** Live counters for metrics and tests. */
  stats(): { connections: number; refusedForCapacity: number; refusedForRate: number };
  /** This instance's Prometheus registry (served at /metrics on METRICS_PORT). */
  metrics: Metrics;
  /** http://METRICS_HOST:port/metrics, unless METRICS_PORT=off. */
  metricsUrl?: string;
  /** Stops accepting, drains, closes WebSockets with 1001 and the database. Idempotent. */
  close(): Promise<void>;
}

/** Pub/sub: Redis when REDIS_URL is set, else in-process. */
async function createPubSub(config: Config, logger: Logger): Promise<PubSub> {
  if (!config.redis.url) return new LocalPubSub();
  const pubsub = await RedisPubSub.connect({ url: config.redis.url, prefix: config.redis.prefix, logger });
  logger.info({ prefix: config.redis.prefix }, 'pub/sub through Redis');
  return pubsub;
}

/** Creates the indexes the models declare (autoIndex is off so start-up order is explicit). */
export async function ensureIndexes(db: Database): Promise<void> {
  await userModel(db.connection).createIndexes();
  await messageModel(db.connection).createIndexes();
  await reactionModel(db.connection).createIndexes();
  await messageExpiryModel(db.connection).createIndexes();
  await roomModel(db.connection).createIndexes();
  await roomMemberModel(db.connection).createIndexes();
  // No secondary indexes: these are read by _id only.
  for (const model of [
    inboxEntryModel,
    inboxPairModel,
    readMarkerModel,
    roomSlugModel,
    counterModel,
    strangerEndedModel,
    strangerQueueModel,
    strangerPairModel,
    updateModel,
    conversationSettingModel,
    blockLogModel,
  ]) {
    await model(db.connection)
      .createCollection()
      .catch(() => undefined);
  }
  await ensureModerationIndexes(moderationModels(db.connection));
}

/** Rate limits: in Redis with REDIS_URL (shared by every instance), else in memory. */
function createRateLimits(config: Config, logger: Logger, redis: Redis | undefined): RateLimits {
  return new RateLimits(config.security.rateLimits, {
    logger,
    // Strikes in Redis with REDIS_URL: a flood spread over instances escalates as one.
    escalation: redis
      ? new RedisEscalation(redis, config.redis.prefix, config.moderation.escalationMaxSeconds * 1000)
      : new Escalation(config.moderation.escalationMaxSeconds * 1000),
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
}

interface AbuseExtras {
  redis: Redis | undefined;
  blocklist: RegExp[];
}

/** Abuse control (blocks, bans, reports, content rules, slow mode): the messages domain's policy. */
function createAbuseControl(
  options: ServerOptions,
  db: Database,
  pubsub: PubSub,
  d: { users: UserService; store: MessageStore; lifecycle: Pick<LifecycleService, 'announce' | 'canSee'> },
  { redis, blocklist }: AbuseExtras,
) {
  const { config } = options;
  const { users, store, lifecycle } = d;
  const blocks = new BlockService(blockLogModel(db.connection), pubsub, db.strategy);
  const mod = moderationModels(db.connection);
  const audit = new AuditLog(mod.Audit);
  const bans = new BanService(mod, users, pubsub, audit, {
    // A key of its own: knowing the session secret's uses must not help reverse network hashes.
    secret:
      config.moderation.networkHashSecret ??
      createHmac('sha256', options.sessionSecret).update('anonymo network hash').digest('hex'),
    networkRecordDays: config.moderation.networkRecordDays,
  });
  const slowMode = new SlowMode(
    mod.SlowMode,
    pubsub,
    audit,
    redis ? { client: redis, prefix: config.redis.prefix } : undefined,
  );
  const content = new ContentCheck(blocklist, config.moderation.newIdentityLinkDelaySeconds * 1000);
  const policy = new AbusePolicy(blocks, [new BanCheck(bans), content, slowMode]);
  const reports = new ReportService(mod, store, policy, audit, pubsub, {
    hideThreshold: config.moderation.reportHideThreshold,
    strategy: db.strategy,
    // Hidden, shown again, closed: recorded in the conversation's update sequence and pushed
    // to its messageUpdated subscribers (redacted for all but the sender while hidden).
    onChanged: async (doc) => {
      await lifecycle.announce(doc._id);
    },
    // A message can be reported by whoever may read it (in a room: its readers, not only members).
    canSee: (viewerId, conversation) => lifecycle.canSee(viewerId, conversation, 'read'),
  });
  const moderators = new ModeratorAuth(config.moderation.moderatorTokens);
  return { blocks, policy, audit, bans, reports, moderators, slowMode };
}

/** Stranger pairing: a Lua script in Redis with REDIS_URL, else claims by insert in the database. */
async function createStrangerMatcher(config: Config, db: Database): Promise<StrangerMatcher> {
  if (!config.redis.url) {
    return new DbStrangerMatcher(
      strangerQueueModel(db.connection),
      strangerPairModel(db.connection),
      strangerEndedModel(db.connection),
      config.strangers.anyAfterMs,
      config.strangers.queueLeaseMs,
    );
  }
  const matcher = new RedisStrangerMatcher(
    config.redis.url,
    config.redis.prefix,
    config.strangers.anyAfterMs,
    config.strangers.queueLeaseMs,
  );
  await matcher.connect();
  return matcher;
}

/** The domain services, each with the narrow dependencies it uses. */
function createDomains(
  options: ServerOptions,
  logger: Logger,
  db: Database,
  pubsub: PubSub,
  /** Infrastructure.pubsubStaysHere. */
  pubsubStaysHere: boolean,
  limits: RateLimits,
  extra: AbuseExtras,
  matcher: StrangerMatcher,
) {
  const { config } = options;
  const users = new UserService(userModel(db.connection), db.strategy);
  // The message lifecycle: expiry, settings, the update sequence (src/lifecycle).
  const retentionMs = config.lifecycle.retentionDays ? config.lifecycle.retentionDays * 86400000 : undefined;
  const expiry = new MessageExpiry(retentionMs);
  const store = new MessageStore(messageModel(db.connection), db.strategy, {
    recent: {
      // Read events keep the cached messages' readAt current on every instance.
      watchReads: (conversation, apply) =>
        pubsub.subscribe(readTopic(conversation), (p) =>
          apply({ readerId: p.reader.id, upToSeq: p.upTo.seq, at: new Date(p.at) }),
        ),
    },
  });
  const updateLog = new UpdateLog(updateModel(db.connection), db.strategy);
  const lifecycle = new LifecycleService(
    store,
    messageModel(db.connection),
    reactionModel(db.connection),
    updateLog,
    users,
    pubsub,
    expiry,
    {
      editWindowSeconds: config.lifecycle.editWindowSeconds,
      // Who may change a room's messages: the rooms domain's rules (RoomService, built below
      // because it needs presence; asked only when a request arrives).
      rooms: { check: (viewerId, roomId, access, field) => rooms.check(viewerId, roomId, access, field) },
    },
  );
  // Abuse control before the domains that ask it (conversation summaries, sends, pairing).
  const abuse = createAbuseControl(options, db, pubsub, { users, store, lifecycle }, extra);
  const registry = config.redis.url
    ? new RedisPresenceRegistry({
        url: config.redis.url,
        prefix: config.redis.prefix,
        heartbeatTtlMs: Math.max(config.presenceGraceMs, 3000),
        logger,
      })
    : undefined;
  const presence = new PresenceService(userModel(db.connection), users, pubsub, {
    graceMs: config.presenceGraceMs,
    logger,
    registry,
  });
  const conversations = new ConversationService(
    inboxEntryModel(db.connection),
    inboxPairModel(db.connection),
    readMarkerModel(db.connection),
    store,
    users,
    pubsub,
    db.strategy,
    (doc) => expiry.isVisible(doc),
    // lastMessage never shows what the viewer may not see (blocked, shadow, hidden by reports).
    (viewerId, docs) => abuse.policy.visible(viewerId, docs),
    pubsubStaysHere ? (ownerId) => presence.connectedHere(ownerId) : undefined,
  );
  // Replays are paid for per WebSocket connection (its socket object; a stable key for the limiter).
  const connectionKeys = new WeakMap<object, string>();
  const connectionKey = (socket: object) => {
    let key = connectionKeys.get(socket);
    if (!key) connectionKeys.set(socket, (key = randomUUID()));
    return key;
  };
  const rooms = new RoomService(
    roomModel(db.connection),
    roomSlugModel(db.connection),
    roomMemberModel(db.connection),
    new ExactCounter(counterModel(db.connection)),
    presence,
    config.rooms,
    pubsub,
  );
  const strangers = new StrangerService(matcher, strangerEndedModel(db.connection), users, pubsub, {
    anyAfterMs: config.strangers.anyAfterMs,
    queueLeaseMs: config.strangers.queueLeaseMs,
    logger,
    // Never paired with someone they block.
    excludedFor: async (userId) => [...(await abuse.blocks.blockedBy(userId))],
  });
  // A room's TTL until its creator changes it: the one it was created with.
  const settings = new ConversationSettings(conversationSettingModel(db.connection), pubsub, async (conversation) => {
    const roomId = roomOfKey(conversation);
    return roomId ? ((await rooms.get(roomId))?.messageTtlSeconds ?? null) : null;
  });
  // What a new user is known not to have yet (blocks, stranger chats, settings, inbox
  // entries), noted where it would otherwise be read on their first direct message.
  users.onCreated(({ id }) => {
    abuse.blocks.created(id);
    strangers.created(id);
    settings.created(id);
    conversations.created(id);
  });
  const messages = new MessageService(
    store,
    users,
    pubsub,
    conversations,
    { rooms, direct: strangers },
    {
      max: config.security.maxReplayMessages,
      charge: (socket, count) => limits.consume('replayMessages', { connection: connectionKey(socket) }, count),
    },
    {},
    // The purge job (built below) wakes up when a message that expires is stored.
    new SendFields(
      store,
      settings,
      expiry,
      (expiresAt) => purge.stored(expiresAt),
      (docs) => purge.track(docs),
    ),
  );
  const forget = new ForgetService(
    db.connection,
    messageModel(db.connection),
    reactionModel(db.connection),
    lifecycle,
    users,
    pubsub,
    expiry,
    logger,
    [
      { name: 'rooms', eraseUser: (u) => rooms.eraseUser(u.id, GHOST_USER.id) },
      { name: 'strangers', eraseUser: (u) => strangers.eraseUser(u) },
      { name: 'blocks', eraseUser: (u) => abuse.blocks.eraseBlocker(u.id) },
      {
        name: 'moderation',
        eraseUser: async (u) => {
          await abuse.reports.eraseReporter(u.id);
          await abuse.bans.eraseUser(u.id);
        },
      },
    ],
  );
  const purge = new PurgeJob(
    messageModel(db.connection),
    reactionModel(db.connection),
    messageExpiryModel(db.connection),
    db.strategy,
    expiry,
    store,
    pubsub,
    { intervalMs: config.lifecycle.purgeIntervalMs, logger },
  );
  const typing = new TypingService(pubsub, limits);
  const identityGate = new IdentityGate({
    config: config.pow,
    limits,
    budget: config.security.rateLimits.identities.ip.points,
    secret: options.sessionSecret,
    spent: extra.redis ? new RedisSpentSolutions(extra.redis, config.redis.prefix, logger) : new MemorySpentSolutions(),
  });
  const identity = new IdentityService(users, pubsub, limits, identityGate);
  /** Attaches sender and recipient to stored messages (replays and gap fills). */
  const toPayloads = async (docs: MessageDoc[]): Promise<MessagePayload[]> => {
    const ids = [...new Set(docs.flatMap((d) => (d.recipient ? [d.sender, d.recipient] : [d.sender])))];
    const byId = new Map((await users.getMany(ids)).flatMap((u) => (u ? [[u.id, u] as const] : [])));
    // Expired (not yet purged) messages are skipped: replays and gap fills never show them.
    return docs.flatMap((message) => {
      if (!expiry.isVisible(message)) return [];
      // A sender who erased their data left tombstones attributed to nobody.
      const sender = message.sender === GHOST_USER.id ? GHOST_USER : byId.get(message.sender);
      // A message whose sender is gone cannot be rendered; it is skipped rather than sent half-empty.
      if (!sender) return [];
      return [{ message, sender, recipient: message.recipient ? (byId.get(message.recipient) ?? null) : null }];
    });
  };
  return {
    users,
    store,
    conversations,
    messages,
    presence,
    typing,
    identity,
    identityGate,
    rooms,
    strangers,
    toPayloads,
    expiry,
    settings,
    updateLog,
    lifecycle,
    forget,
    purge,
    ...abuse,
  };
}

type Domains = ReturnType<typeof createDomains>;

function createResolvers(config: Config, d: Domains, limits: RateLimits) {
  const avatarUrl = (seed: string) => `${config.publicUrl ?? ''}/avatars/${encodeURIComponent(seed)}.svg`;
  return [
    new UserResolver(d.identity, d.presence, avatarUrl),
    new MessageResolver(d.messages, limits, d.policy),
    new ConversationResolver(d.conversations, d.messages),
    new PresenceResolver(d.presence),
    new TypingResolver(d.messages, d.typing),
    new LifecycleResolver(
      d.lifecycle,
      d.forget,
      d.settings,
      d.messages,
      d.store,
      d.updateLog,
      d.expiry,
      { moderators: d.moderators, reports: d.reports },
      d.rooms,
    ),
    new RoomTtlResolver(d.settings),
    new ReactionResolver(d.lifecycle),
    new ConversationTtlResolver(d.settings),
    new RoomResolver(d.rooms),
    new MessageRoomResolver(d.rooms),
    new StrangerResolver(d.strangers, limits),
    new BlockResolver(d.blocks, d.users),
    new ModerationResolver(d.moderators, d.reports, d.bans, d.audit, d.slowMode, d.rooms, limits),
  ] as const;
}

function errorFormat(config: Config, logger: Logger): FormatOptions {
  return {
    includeStack: !config.isProduction,
    hideSuggestions: config.security.hideSuggestions,
    onInternalError: (err) => logger.error({ err }, 'internal error'),
  };
}

interface Infrastructure {
  pubsub: PubSub;
  /**
   * Whether what this instance publishes reaches only its own subscribers: the in-process
   * pub/sub it made itself (no Redis, none given by the caller, which may share one).
   */
  pubsubStaysHere: boolean;
  db: Database;
  limits: RateLimits;
  /** Open WebSockets per address and per user (in Redis with REDIS_URL). */
  connections: ConnectionCounter;
  /** Rate-limit counters' own connection (REDIS_URL only). */
  limitsRedis?: Redis;
}

/** List fields' sizes when the client gives none: what the cost limit prices them at. */
const LIST_SIZES: DefaultListSizes = {
  messages: DEFAULT_PAGE_SIZE,
  onlineUsers: ONLINE_USERS_MAX,
  conversations: CONVERSATIONS_MAX,
};

/** Open-connection counts; RATE_LIMITS=off (load tests, many clients on one address) lifts them too. */
function createConnectionCounter(config: Config, logger: Logger, redis: Redis | undefined): ConnectionCounter {
  const limits = config.security.rateLimits.enabled
    ? config.security.connections
    : { perIp: Number.MAX_SAFE_INTEGER, perUser: Number.MAX_SAFE_INTEGER };
  return redis
    ? new RedisConnectionCounter(limits, { redis, prefix: config.redis.prefix, logger })
    : new MemoryConnectionCounter(limits);
}

async function connectInfrastructure(
  options: ServerOptions,
  logger: Logger,
  metrics: Metrics,
): Promise<Infrastructure> {
  const { config } = options;
  const created = options.pubsub ? undefined : await createPubSub(config, logger);
  const pubsub = metrics.observePubSub(options.pubsub ?? created!);
  const db = await connectDatabase({
    uri: options.mongodbUri,
    timeoutMs: config.dbTimeoutMs,
    strategy: config.dbStrategy,
    logger,
  });
  metrics.dbCommands.observe(db.connection.getClient());
  await ensureIndexes(db);
  const limitsRedis = config.redis.url
    ? createRedisClient(config.redis.url, { name: 'limits', failFast: true })
    : undefined;
  // The limiter lets actions through while Redis is away; errors surface per command.
  limitsRedis?.on('error', () => undefined);
  await limitsRedis?.connect().catch(() => undefined);
  return {
    pubsub,
    pubsubStaysHere: created instanceof LocalPubSub,
    db,
    limitsRedis,
    limits: createRateLimits(config, logger, limitsRedis),
    connections: createConnectionCounter(config, logger, limitsRedis),
  };
}

/** The realtime engine with every domain's kinds of live subscription. */
function createRealtime(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  format: FormatOptions,
  schema: GraphQLSchema,
  pubsub: PubSub,
  d: Domains,
): RealtimeEngine {
  return new RealtimeEngine({
    schema,
    pubsub,
    kinds: [
      afterBlocksLoaded(
        messageChannelKind(d.messages, {
          store: d.store,
          toPayloads: d.toPayloads,
          audience: (p) => d.policy.audience(p),
        }),
        d.blocks,
      ),
      afterBlocksLoaded(
        typingChannelKind(d.messages, (typist) => d.blocks.blockersOf(typist)),
        d.blocks,
      ),
      presenceChannelKind(),
      inboxChannelKind(),
      readChannelKind(d.messages),
      updateChannelKind(d.messages, {
        log: d.updateLog,
        store: { get: (id) => d.lifecycle.fresh(id) },
        expiry: d.expiry,
        lifecycle: d.lifecycle,
        audience: (p) => d.policy.updateAudience(p),
      }),
      strangerChannelKind(),
    ],
    sharedContext: () => sharedContext(d.users),
    format,
    maxBufferedBytes: config.wsMaxBufferedBytes,
    logger,
    onDelivered: metrics.delivered,
    onExecuted: metrics.executed,
    fanout: config.fanout,
    replays: { concurrent: config.storm.replayConcurrency, queue: config.storm.replayQueue },
    onReplayPage: metrics.replayPage,
  });
}

/**
 * A member who left a private room (or was erased) may no longer read it: their open
 * subscriptions to the room's messages, updates and typing end on this instance, with an error.
 */
function endSubscriptionsOnRoomLeft(pubsub: PubSub, realtime: RealtimeEngine): Promise<() => void> {
  return pubsub.subscribe(ROOM_LEFT_TOPIC, ({ room, user }) => {
    const key = roomKey(room);
    for (const topic of [messageTopic(key), updateTopic(key), typingTopic(key)]) {
      realtime.endSubscriptions(topic, user, new ForbiddenError('You are no longer a member of this room'));
    }
  });
}

interface Transports {
  httpServer: Server;
  ws: WsTransport;
  apollo: ApolloServer<Context>;
  sessionStore: MongoSessionStore;
  /** Ends the subscription that evicts revoked sessions from the store's memory. */
  stopForgetting(): void;
  /** From now on: readiness answers 503 and no new WebSocket is admitted. */
  stopAccepting(): void;
}

/** HTTP and WebSocket on one server and port, sharing sessions, origins and limits. */
async function createTransports(
  options: ServerOptions,
  parts: { logger: Logger; metrics: Metrics; format: FormatOptions; schema: GraphQLSchema; realtime: RealtimeEngine },
  infra: Infrastructure,
  d: Domains,
): Promise<Transports> {
  const { config, sessionSecret } = options;
  const { logger, metrics, format, schema, realtime } = parts;
  const { db, pubsub, limits } = infra;
  const sessionStore = new MongoSessionStore({
    connection: db.connection,
    strategy: db.strategy,
    ttlMs: config.session.ttlMs,
  });
  await sessionStore.init();
  // A session revoked on any instance leaves this one's memory too.
  const stopForgetting = await pubsub.subscribe(SESSION_REVOKED_TOPIC, ({ sessionId }) =>
    sessionStore.forget(sessionId),
  );
  const sessionMiddleware = createSessionMiddleware(config, sessionStore, sessionSecret);
  const origins = new OriginPolicy(config.security);
  const app = createExpressApp(config, logger);
  const httpServer = createHttpServer(app);
  // Before the server accepts anything: it must see every connection.
  const drain = new HttpDrain(httpServer);
  const common = {
    config,
    logger,
    schema,
    format,
    metrics,
    users: d.users,
    limits,
    identityGate: d.identityGate,
    origins,
    sessionMiddleware,
    listSizes: LIST_SIZES,
  };
  const ws = await createWsTransport({
    ...common,
    validator: new OperationValidator(schema, config),
    realtime,
    pubsub,
    // Connections count for presence, and a user whose last one closes leaves the stranger queue;
    // blocked sets are kept loaded for viewers with a WebSocket here (the fan-out reads them).
    presence: {
      connected: (user) => {
        d.presence.connected(user);
        d.strangers.connected(user);
        d.blocks.retain(user.id);
      },
      disconnected: (user) => {
        d.presence.disconnected(user);
        d.strangers.disconnected(user);
        d.blocks.release(user.id);
      },
    },
    connections: infra.connections,
    sessionSecret,
    trustProxy: app.get('trust proxy fn') as TrustFn,
    drain,
  });
  httpServer.on('upgrade', ws.onUpgrade);
  let shuttingDown = false;
  const apollo = await startHttpTransport(app, httpServer, {
    ...common,
    ping: () => db.ping(),
    isShuttingDown: () => shuttingDown,
    onDrain: () => ws.dispose(),
    drain,
    cutWebSockets: () => ws.terminate(),
  });
  const stopAccepting = () => {
    shuttingDown = true;
    ws.stopAccepting();
  };
  return { httpServer, ws, apollo, sessionStore, stopForgetting, stopAccepting };
}

/**
 * Connections the kernel may hold for us before we accept them. Node's default (511) overflows
 * in a reconnect storm while the server is busy (the storm benchmark saw 442–512 queued), and an
 * overflowing queue drops SYNs, which clients only retry after 1, 3, 7 s. Linux caps it at
 * net.core.somaxconn (4096 by default since 5.4).
 */
const LISTEN_BACKLOG = 4096;

function listen(httpServer: Server, config: Config): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG }, () => {
      httpServer.off('error', reject);
      resolve((httpServer.address() as AddressInfo).port);
    });
  });
}

/** Builds and starts one server: the stages in this file's header, in that order. */
export async function createServer(options: ServerOptions): Promise<AnonymoServer> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config);
  const metrics = new Metrics({ commandSampling: { percent: config.metrics.commandSamplingPercent } });
  const format = errorFormat(config, logger);
  // Read before anything is connected: a bad expression stops the start with nothing to undo.
  const blocklist = loadBlocklist(config.moderation.blocklistFile);

  const infra = await connectInfrastructure(options, logger, metrics);
  const { pubsub, db, limits } = infra;
  const d = createDomains(
    options,
    logger,
    db,
    pubsub,
    infra.pubsubStaysHere,
    limits,
    { redis: infra.limitsRedis, blocklist },
    await createStrangerMatcher(config, db),
  );
  const schema = await createSchema(createResolvers(config, d, limits));
  const realtime = createRealtime(config, logger, metrics, format, schema, pubsub, d);
  const t = await createTransports(options, { logger, metrics, format, schema, realtime }, infra, d);
  const stopRoomLeft = await endSubscriptionsOnRoomLeft(pubsub, realtime);
  await d.presence.start();
  await d.settings.start();
  await d.forget.start();
  await d.lifecycle.start();
  await d.purge.start();
  await d.strangers.start();
  await d.blocks.start();
  await d.bans.start();
  await d.slowMode.start();
  await d.reports.start();

  let metricsServer: MetricsServer | undefined;
  if (config.metrics.port !== null) {
    metricsServer = await startMetricsServer(metrics, { port: config.metrics.port, host: config.metrics.host });
  }
  const port = await listen(t.httpServer, config);
  metrics.setSources({
    connections: () => t.ws.stats().connections,
    subscriptions: () => realtime.stats().subscribers,
    upgradesRefused: () => {
      const w = t.ws.stats();
      return { capacity: w.refusedForCapacity, rate: w.refusedForRate };
    },
    replays: () => realtime.stats().replays,
    purge: () => d.purge.stats(),
    databaseUp: () => db.isConnected(),
  });
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  logger.info({ port, database: db.kind }, `Anonymo listening on http://${host}:${port}/graphql`);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      t.stopAccepting();
      d.strangers.draining();
      logger.info('shutting down');
      // Apollo's stop(): the drain hook closes WebSockets with 1001, then the HTTP server
      // stops accepting and in-flight requests finish (or are cut after the timeout).
      await t.apollo.stop();
      await metricsServer?.close();
      metrics.dbCommands.close();
      // Operations that arrived over WebSocket may still be writing: let them finish.
      await d.messages.drain(config.shutdownTimeoutMs);
      await d.lifecycle.drain(config.shutdownTimeoutMs);
      await d.purge.stop();
      d.settings.close();
      d.forget.close();
      d.lifecycle.close();
      await d.presence.stop();
      await d.strangers.stop();
      d.blocks.stop();
      d.bans.stop();
      d.slowMode.stop();
      d.reports.stop();
      infra.connections.close();
      if (infra.limitsRedis) await closeRedis(infra.limitsRedis);
      t.sessionStore.close();
      t.stopForgetting();
      stopRoomLeft();
      d.store.recent.clear();
      await pubsub.close();
      await db.close();
      logger.info('stopped');
    })());

  return {
    url: `http://${host}:${port}/graphql`,
    wsUrl: `ws://${host}:${port}/graphql`,
    port,
    services: { config, logger, db, pubsub, limits, realtime, ...d },
    stats: () => t.ws.stats(),
    metrics,
    metricsUrl: metricsServer?.url,
    close,
  };
}
