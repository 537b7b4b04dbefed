/**
 * Prometheus metrics of one server instance, served at `/metrics` (prom-client).
 *
 * Each instance has its own registry: tests run several servers in one process, and the
 * global default registry would mix (and reject duplicate) metrics across them.
 *
 * What is counted where:
 * - open WebSockets, active subscriptions, database up: read when scraped from the live
 *   objects (`server.stats()`, `realtime.stats()`, `db.isConnected()`), so they cannot drift.
 * - messages sent: each stored message is published exactly once on its conversation's
 *   topic (a `clientId` retry publishes nothing), so publishes to `message:*` are counted.
 * - deliveries and delivery latency: reported by the fan-out (`Channel.dispatch`) once per
 *   event with the number of frames it wrote. The latency histogram gets one observation
 *   per message event and instance: message `createdAt` (server time, before the insert) to
 *   the moment the last frame of that event was written here. Replays after `after` are not
 *   deliveries of live events and are counted by neither.
 * - operation durations and errors by code: an Apollo plugin for HTTP, graphql-ws hooks for
 *   WebSocket operations (for a subscription, the duration is its set-up).
 * - database commands per operation: the driver's command monitoring, charged to the
 *   operation by async context (db-commands.ts), observed when the answer is sent: an HTTP
 *   request's session read counts, work the operation left running (inbox notifications,
 *   the session's expiry renewal after the response) does not.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { getOperationAST, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PubSub } from '../realtime/pubsub';
import { CommandCounter, type CommandSampling, type CommandScope } from './db-commands';
import { KNOWN_OPERATION_NAMES } from './operation-names';

export type Transport = 'http' | 'ws';

/** Live readings taken at scrape time. */
export interface MetricsSources {
  /** Open WebSocket connections. */
  connections(): number;
  /** Subscriptions attached to the fan-out. */
  subscriptions(): number;
  /** True while the database driver has a usable connection. */
  databaseUp(): boolean;
  /** WebSocket upgrades refused since start: server full (MAX_CONNECTIONS), above WS_UPGRADE_RATE. */
  upgradesRefused?(): { capacity: number; rate: number };
  /** `after` replays running, waiting for a slot, and refused for a full queue (REPLAY_*). */
  replays?(): { running: number; waiting: number; refused: number };
  /** The expired-message purge: passes that scanned, passes skipped (nothing could expire), messages purged. */
  purge?(): { scanned: number; skipped: number; purged: number };
}

export interface MetricsOptions {
  /** Prefix of every metric name. Default `anonymo_`. */
  prefix?: string;
  /** Also export Node.js process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
  /** Which operations the commands-per-operation histogram counts (db-commands.ts). Default all. */
  commandSampling?: CommandSampling;
  /**
   * Operation names kept as label values; any other name is counted as `other`, so a client
   * inventing names can neither grow the registry nor crowd out real operations.
   * Default {@link KNOWN_OPERATION_NAMES}.
   */
  knownOperationNames?: Iterable<string>;
}

/** Commands per operation: the hot paths are meant to take a handful. */
const COMMAND_BUCKETS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100];

/** Seconds; chat operations are expected in milliseconds, so the buckets are dense there. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Topic kind for labels: `message`, `typing`, `read`, `presence`, ... (never the conversation). */
function topicKind(topic: string): string {
  const i = topic.indexOf(':');
  return i < 0 ? topic : topic.slice(0, i);
}

export class Metrics {
  readonly registry = new Registry();
  private readonly prefix: string;
  private readonly operationNames: ReadonlySet<string>;
  private sources?: MetricsSources;

  private readonly messagesSent: Counter<'conversation'>;
  private readonly deliveries: Counter<'kind'>;
  private readonly executions: Counter<'kind'>;
  private readonly deliveryLatency: Histogram;
  private readonly operationDuration: Histogram<'type' | 'name' | 'transport'>;
  private readonly errors: Counter<'code' | 'transport'>;
  private readonly operationCommands: Histogram<'type' | 'name' | 'transport'>;
  private readonly replayPages: Counter;
  private readonly replayedMessages: Counter;
  /** Database commands by operation (observeDatabase connects it to the driver). */
  readonly dbCommands: CommandCounter;
  /** WebSocket operations in progress: start times and command scopes by connection context and subscription id. */
  private readonly wsStarts = new WeakMap<object, Map<string, { start: number; scope: CommandScope | undefined }>>();

  constructor(options: MetricsOptions = {}) {
    this.prefix = options.prefix ?? 'anonymo_';
    this.operationNames = new Set(options.knownOperationNames ?? KNOWN_OPERATION_NAMES);
    const p = this.prefix;
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    const self = this;
    new Gauge({
      name: `${p}websocket_connections`,
      help: 'Open WebSocket connections',
      registers,
      collect() {
        this.set(self.sources?.connections() ?? 0);
      },
    });
    new Gauge({
      name: `${p}subscriptions_active`,
      help: 'Active GraphQL subscriptions',
      registers,
      collect() {
        this.set(self.sources?.subscriptions() ?? 0);
      },
    });
    new Gauge({
      name: `${p}database_up`,
      help: '1 while the database is connected, else 0',
      registers,
      collect() {
        this.set(self.sources?.databaseUp() ? 1 : 0);
      },
    });
    new Counter({
      name: `${p}websocket_upgrades_refused_total`,
      help: 'WebSocket upgrades refused with 503 by this instance: capacity (MAX_CONNECTIONS) or rate (WS_UPGRADE_RATE)',
      labelNames: ['reason'],
      registers,
      collect() {
        const r = self.sources?.upgradesRefused?.() ?? { capacity: 0, rate: 0 };
        this.reset();
        this.inc({ reason: 'capacity' }, r.capacity);
        this.inc({ reason: 'rate' }, r.rate);
      },
    });
    new Gauge({
      name: `${p}replays`,
      help: 'Subscription replays (after) by state: running, waiting for a slot (REPLAY_CONCURRENCY)',
      labelNames: ['state'],
      registers,
      collect() {
        const r = self.sources?.replays?.() ?? { running: 0, waiting: 0 };
        this.set({ state: 'running' }, r.running);
        this.set({ state: 'waiting' }, r.waiting);
      },
    });
    new Counter({
      name: `${p}replays_refused_total`,
      help: 'Subscribes with after refused RATE_LIMITED because REPLAY_QUEUE replays were already waiting',
      registers,
      collect() {
        this.reset();
        this.inc(self.sources?.replays?.().refused ?? 0);
      },
    });
    new Counter({
      name: `${p}purge_passes_total`,
      help: 'Passes of the expired-message purge: scanned, or skipped while no message could expire',
      labelNames: ['outcome'],
      registers,
      collect() {
        const r = self.sources?.purge?.() ?? { scanned: 0, skipped: 0 };
        this.reset();
        this.inc({ outcome: 'scanned' }, r.scanned);
        this.inc({ outcome: 'skipped' }, r.skipped);
      },
    });
    new Counter({
      name: `${p}messages_purged_total`,
      help: 'Expired messages (disappearing messages, RETENTION_DAYS) whose content this instance erased',
      registers,
      collect() {
        this.reset();
        this.inc(self.sources?.purge?.().purged ?? 0);
      },
    });
    this.replayPages = new Counter({
      name: `${p}replay_pages_total`,
      help: 'Pages of messages read by subscription replays (after) and sent to their subscriber',
      registers,
    });
    this.replayedMessages = new Counter({
      name: `${p}replayed_messages_total`,
      help: 'Messages read by subscription replays (after)',
      registers,
    });
    this.messagesSent = new Counter({
      name: `${p}messages_sent_total`,
      help: 'Messages stored and published, by conversation kind (lobby or direct)',
      labelNames: ['conversation'],
      registers,
    });
    this.deliveries = new Counter({
      name: `${p}subscription_deliveries_total`,
      help: 'Subscription frames written to sockets for live events, by topic kind',
      labelNames: ['kind'],
      registers,
    });
    this.executions = new Counter({
      name: `${p}fanout_executions_total`,
      help:
        'Executions of live events by the grouped fan-out, by topic kind: one per event and group of identical ' +
        'subscriptions (viewers filtered out by blocks or shadow bans cost none)',
      labelNames: ['kind'],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: `${p}message_delivery_latency_seconds`,
      help: 'Message createdAt to the last subscriber frame of that message written on this instance',
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.operationDuration = new Histogram({
      name: `${p}graphql_operation_duration_seconds`,
      help: 'GraphQL operation duration by type, name and transport (subscriptions: set-up only)',
      labelNames: ['type', 'name', 'transport'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.errors = new Counter({
      name: `${p}graphql_errors_total`,
      help: 'GraphQL errors sent to clients, by extensions.code and transport',
      labelNames: ['code', 'transport'],
      registers,
    });
    this.operationCommands = new Histogram({
      name: `${p}graphql_operation_db_commands`,
      help: 'Database commands started by one GraphQL operation (HTTP: including its session read), by type, name and transport; operations sampled in time (DB_COMMAND_SAMPLING)',
      labelNames: ['type', 'name', 'transport'],
      buckets: COMMAND_BUCKETS,
      registers,
    });
    const commandsTotal = new Counter({
      name: `${p}db_commands_total`,
      help: 'Database commands sent by this instance, by command name',
      labelNames: ['command'],
      registers,
    });
    this.dbCommands = new CommandCounter((command) => commandsTotal.inc({ command }), options.commandSampling);
    // Zero series, so dashboards and rate() see the counters before the first event.
    for (const conversation of ['lobby', 'direct']) this.messagesSent.inc({ conversation }, 0);
    this.deliveries.inc({ kind: 'message' }, 0);
  }

  /** Connects the gauges to the live server (called once it exists). */
  setSources(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** Text exposition for a scrape. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * Fan-out hook: `count` frames of one event were written for `topic`; `createdAt` is when
   * the event's message was stored (message events only), for the delivery latency.
   */
  readonly delivered = (count: number, topic: string, createdAt?: Date): void => {
    if (count <= 0) return;
    this.deliveries.inc({ kind: topicKind(topic) }, count);
    if (createdAt) this.deliveryLatency.observe(Math.max(0, Date.now() - createdAt.getTime()) / 1000);
  };

  /** Fan-out hook: a replay read a page of `messages`. */
  readonly replayPage = (messages: number): void => {
    this.replayPages.inc();
    if (messages > 0) this.replayedMessages.inc(messages);
  };

  /** Fan-out hook: a live event of `topic` was executed `count` times (once per group it reached). */
  readonly executed = (count: number, topic: string): void => {
    this.executions.inc({ kind: topicKind(topic) }, count);
  };

  /** Wraps a pub/sub transport to count stored messages as they are published. */
  observePubSub(pubsub: PubSub): PubSub & { inner: PubSub } {
    return {
      inner: pubsub,
      publish: (topic, payload) => {
        if (topic.startsWith('message:')) {
          this.messagesSent.inc({ conversation: (topic as string) === 'message:lobby' ? 'lobby' : 'direct' });
        }
        return pubsub.publish(topic, payload);
      },
      subscribe: (topic, listener) => pubsub.subscribe(topic, listener),
      close: () => pubsub.close(),
    };
  }

  /** Counts errors that are about to be sent, by their (already formatted) code. */
  countErrors(
    errors: ReadonlyArray<GraphQLFormattedError | { extensions?: Record<string, unknown> }>,
    transport: Transport,
  ): void {
    for (const e of errors) {
      const code = e.extensions?.code;
      this.errors.inc({ code: typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR', transport });
    }
  }

  private operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    return this.operationNames.has(name) ? name : 'other';
  }

  private observeOperation(
    type: string,
    name: string | null | undefined,
    transport: Transport,
    seconds: number,
    scope: CommandScope | undefined,
  ): void {
    const labels = { type, name: this.operationLabel(name), transport };
    this.operationDuration.observe(labels, seconds);
    if (scope) this.operationCommands.observe(labels, scope.commands);
  }

  /** Apollo Server plugin: HTTP operation durations and errors. */
  apolloPlugin(): ApolloServerPlugin {
    const metrics = this;
    return {
      async contextCreationDidFail({ error }) {
        // The context function refused the request (rate limit, database away): no operation ran.
        metrics.countErrors([{ extensions: (error as { extensions?: Record<string, unknown> }).extensions }], 'http');
      },
      async invalidRequestWasReceived() {
        metrics.countErrors([{ extensions: { code: 'BAD_REQUEST' } }], 'http');
      },
      async requestDidStart() {
        const start = performance.now();
        const scope = metrics.dbCommands.current();
        return {
          async willSendResponse({ operation, operationName, response }) {
            metrics.observeOperation(
              operation?.operation ?? 'unknown',
              operation?.name?.value ?? operationName,
              'http',
              (performance.now() - start) / 1000,
              scope,
            );
            if (response.body.kind === 'single' && response.body.singleResult.errors) {
              metrics.countErrors(response.body.singleResult.errors, 'http');
            }
          },
        };
      },
    };
  }

  /** graphql-ws `onSubscribe`: an operation arrived on connection `ctx`. */
  wsOperationStarted(ctx: object, id: string): void {
    let starts = this.wsStarts.get(ctx);
    if (!starts)
      this.wsStarts.set(ctx, (starts = new Map<string, { start: number; scope: CommandScope | undefined }>()));
    // Called synchronously at the start of graphql-ws's onSubscribe: the operation's
    // execution continues from here, so its commands are charged to this scope.
    starts.set(id, { start: performance.now(), scope: this.dbCommands.enter() });
  }

  /** graphql-ws `onOperation`: executed (query, mutation) or set up (subscription). */
  wsOperationDone(ctx: object, id: string, document: DocumentNode, operationName?: string | null): void {
    const starts = this.wsStarts.get(ctx);
    const started = starts?.get(id);
    if (started === undefined) return;
    starts!.delete(id);
    // An empty Map per idle connection is ~170 bytes held for nothing.
    if (starts!.size === 0) this.wsStarts.delete(ctx);
    const op = getOperationAST(document, operationName);
    this.observeOperation(
      op?.operation ?? 'unknown',
      op?.name?.value ?? operationName,
      'ws',
      (performance.now() - started.start) / 1000,
      started.scope,
    );
  }

  /** graphql-ws: an operation that ended before `onOperation` (refused, invalid). */
  wsOperationFailed(ctx: object, id: string, errors: readonly GraphQLFormattedError[]): void {
    const starts = this.wsStarts.get(ctx);
    if (starts?.delete(id) && starts.size === 0) this.wsStarts.delete(ctx);
    this.countErrors(errors, 'ws');
  }
}
