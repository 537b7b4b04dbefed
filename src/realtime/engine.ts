/**
 * The realtime engine: owns this instance's subscription channels (one per topic with
 * subscribers here, subscribed to pub/sub while it has any, torn down with the last one) and
 * executes events for them.
 *
 * It knows no domain. Each domain describes its kinds of live subscription as a
 * {@link ChannelKind} (how a viewer's arguments map to a topic, and which channel class
 * serves it) and the composition root hands them to the constructor. A subscription
 * resolver starts one by name through its context (`live(ctx, 'messages', args)`).
 */
import { execute, type GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { formatGraphQLError, type FormatOptions } from '../errors';
import {
  Channel,
  Sink,
  SinkIterator,
  type Attachment,
  type ChannelTools,
  type Renderer,
  type SinkOwner,
  type Subscriber,
} from './fanout';
import { Planner } from './plan';
import { ReplayGate, type ReplayGateOptions, type ReplayGateStats } from './replay-gate';
import { addSocketCloseHook, removeSocketCloseHook, type SocketCloseHook } from './socket-close';
import type { PayloadOf, PubSub, TopicName } from './pubsub';

/** Where a subscription goes: its topic, and what its channel needs to attach it (e.g. a replay start). */
export interface Route<K extends TopicName = TopicName, O = unknown> {
  topic: K;
  options: O;
}

/** A kind of live subscription on topics `K`, registered by its domain. */
export interface ChannelKind<K extends TopicName = TopicName, O = unknown> {
  /** The name subscription resolvers start it by. */
  readonly name: string;
  /**
   * Maps the viewer and the subscription's arguments to a topic; throws (BAD_USER_INPUT,
   * FORBIDDEN) to refuse. Runs for every new subscription.
   */
  route(viewerId: string, args: Record<string, unknown>, subscriber: Subscriber): Route<K, O> | Promise<Route<K, O>>;
  /** The channel of one topic on this instance; default a plain {@link Channel}. */
  createChannel?(route: Route<K, O>, tools: ChannelTools): Channel<PayloadOf<K>, O>;
}

interface Entry {
  /** Its key in the engine's entries. */
  topic: string;
  channel: Channel<PayloadOf<TopicName>>;
  ready: Promise<void>;
  unsubscribe?: () => void;
  /** Subscribers attached or attaching; the channel closes when it drops to 0. */
  refs: number;
  /** Their sinks, also while still attaching (replaying): endSubscriptions reaches those too. */
  sinks: Set<Sink>;
}

export interface RealtimeEngineOptions {
  schema: GraphQLSchema;
  pubsub: PubSub;
  kinds: readonly ChannelKind[];
  /** The context value for events executed once for many subscribers (no viewer in it). */
  sharedContext: () => unknown;
  format: FormatOptions;
  /** A subscriber whose socket has more than this buffered is disconnected. */
  maxBufferedBytes: number;
  logger: Logger;
  /** Called after a live event was written to `count` subscribers of `topic` (metrics). Default none. */
  onDelivered?: ChannelTools['onDelivered'];
  /** Called after a live event was executed `count` times (once per group it reached). Default none. */
  onExecuted?: ChannelTools['onExecuted'];
  /** How events are executed (see FANOUT in config.ts). Default `grouped`. */
  fanout?: 'grouped' | 'per-subscriber';
  /** Bounds replays running and waiting at once (REPLAY_CONCURRENCY, REPLAY_QUEUE). Default unbounded. */
  replays?: ReplayGateOptions;
  /** Called after each page a replay read (metrics). */
  onReplayPage?: ChannelTools['onReplayPage'];
}

/** Counters for /metrics and leak checks. */
export interface RealtimeStats {
  channels: number;
  subscribers: number;
  groups: number;
  /** Subscription plans in use (each kept only while it has subscribers). */
  plans: number;
  /** Replays running, waiting for a slot, and refused for a full queue. */
  replays: ReplayGateStats;
}

export class RealtimeEngine {
  private readonly entries = new Map<string, Entry>();
  private readonly kinds = new Map<string, ChannelKind>();
  private readonly planner: Planner;
  private readonly tools: ChannelTools;
  private readonly replays?: ReplayGate;

  /** @internal (Subscription) */
  readonly maxBufferedBytes: number;

  constructor(private readonly options: RealtimeEngineOptions) {
    this.maxBufferedBytes = options.maxBufferedBytes;
    for (const kind of options.kinds) {
      if (this.kinds.has(kind.name)) throw new Error(`Channel kind ${kind.name} registered twice`);
      this.kinds.set(kind.name, kind);
    }
    this.planner = new Planner(options.schema, options.fanout === 'per-subscriber');
    const replays = options.replays ? new ReplayGate(options.replays) : undefined;
    this.replays = replays;
    this.tools = {
      render: this.render,
      onError: (err) => options.logger.warn({ err }, 'subscription delivery failed; will retry'),
      onDelivered: options.onDelivered,
      replaySlot: replays && ((live) => replays.acquire(live)),
      onReplayPage: options.onReplayPage,
      onExecuted: options.onExecuted,
    };
  }

  private readonly render: Renderer = async (plan, event, viewer) => {
    const result = await execute({
      schema: this.options.schema,
      document: plan.document,
      rootValue: event,
      contextValue: viewer ?? this.options.sharedContext(),
      variableValues: plan.variables,
      operationName: plan.operationName,
    });
    if (!result.errors) return JSON.stringify({ data: result.data });
    return JSON.stringify({
      data: result.data ?? null,
      errors: result.errors.map((e) => formatGraphQLError(e, this.options.format)),
    });
  };

  /** @internal (Subscription) The topic's entry, created on its first subscriber; counts one more. */
  acquire(kind: ChannelKind, route: Route): Entry {
    let entry = this.entries.get(route.topic);
    if (!entry) {
      const channel =
        kind.createChannel?.(route, this.tools) ?? new Channel<PayloadOf<TopicName>>(route.topic, this.tools);
      const created: Entry = { topic: route.topic, channel, refs: 0, ready: Promise.resolve(), sinks: new Set() };
      created.ready = (async () => {
        created.unsubscribe = await this.options.pubsub.subscribe(route.topic, (ev) => channel.onEvent(ev));
        await channel.start();
      })();
      created.ready.catch(() => {
        // A channel that failed to start is dropped; the next subscriber tries afresh.
        if (this.entries.get(route.topic) === created) this.entries.delete(route.topic);
        created.unsubscribe?.();
      });
      this.entries.set(route.topic, created);
      entry = created;
    }
    entry.refs++;
    return entry;
  }

  /** @internal (Subscription) */
  release(entry: Entry, sink: Sink): void {
    const topic = entry.topic;
    entry.channel.leave(sink);
    entry.sinks.delete(sink);
    entry.refs--;
    if (entry.refs === 0 && this.entries.get(topic) === entry) {
      this.entries.delete(topic);
      entry.channel.closed = true;
      entry.unsubscribe?.();
    }
  }

  /** Starts a subscription of a registered kind: the async iterator its resolver returns. */
  async subscribe(
    subscriber: Subscriber,
    kindName: string,
    args: Record<string, unknown>,
  ): Promise<AsyncIterableIterator<unknown>> {
    const kind = this.kinds.get(kindName);
    if (!kind) throw new Error(`No channel kind ${kindName} is registered`);
    const route = await kind.route(subscriber.viewerId, args, subscriber);
    return new SinkIterator(new Subscription(this, this.planner, kind, route, subscriber));
  }

  /**
   * Ends `viewerId`'s subscriptions to `topic` on this instance (e.g. a member who left a
   * private room), also those still replaying: a replay stops at its next batch and never
   * joins. Each receives `error` as its graphql-ws `error` message. Returns how many.
   */
  endSubscriptions(topic: string, viewerId: string, error?: unknown): number {
    const entry = this.entries.get(topic);
    if (!entry) return 0;
    const mine = [...entry.sinks].filter((s) => !s.ended && s.viewerId === viewerId);
    for (const sink of mine) sink.end(error);
    return mine.length;
  }

  stats(): RealtimeStats {
    let subscribers = 0;
    let groups = 0;
    for (const e of this.entries.values()) {
      const s = e.channel.stats();
      subscribers += s.sinks;
      groups += s.groups;
    }
    return {
      channels: this.entries.size,
      subscribers,
      groups,
      plans: this.planner.size,
      replays: this.replays?.stats() ?? { running: 0, waiting: 0, refused: 0 },
    };
  }

  /** Ends every subscription (server stopping). */
  close(): void {
    for (const [topic, e] of this.entries) {
      e.channel.endAll();
      e.unsubscribe?.();
      this.entries.delete(topic);
    }
  }
}

/**
 * One subscription's attachment to its channel: what the iterator starts on its first `next()`
 * and detaches when it ends, and the socket's close hook. One object holding what closures
 * over the subscribe call used to hold (a start function, a detach function, the returned
 * detach, the close hook and its remover: ~0.6 KiB per idle subscriber).
 */
class Subscription implements Attachment, SocketCloseHook {
  private sink?: Sink;
  private entry?: Entry;
  /**
   * Where it attaches; dropped once attached (the route's options, e.g. a replay start, are
   * for `attach`, and the entry's channel knows the topic): ~80 bytes per idle subscriber.
   */
  private route?: Route;

  constructor(
    private readonly engine: RealtimeEngine,
    private readonly planner: Planner,
    private readonly kind: ChannelKind,
    route: Route,
    private readonly subscriber: Subscriber,
  ) {
    this.route = route;
  }

  async start(owner: SinkOwner): Promise<void> {
    const { subscriber, planner } = this;
    const route = this.route!;
    const plan = planner.plan(
      subscriber.query,
      subscriber.document,
      subscriber.operationName,
      subscriber.variables,
      subscriber.viewerId,
    );
    const sink = (this.sink = new Sink(subscriber, plan, this.engine.maxBufferedBytes, owner));
    const entry = (this.entry = this.engine.acquire(this.kind, route));
    entry.sinks.add(sink);
    // The socket's end ends its subscriptions even if graphql-ws lost track of one (an id
    // reused while its first subscription was being set up): nothing outlives its socket.
    addSocketCloseHook(subscriber.socket, this);
    try {
      await entry.ready;
      await entry.channel.attach(sink, route.options);
    } catch (err) {
      this.release();
      throw err;
    } finally {
      this.route = undefined;
    }
  }

  /** The socket closed: the subscription ends (its iterator detaches it). */
  socketClosed(): void {
    this.sink?.end();
  }

  detach(): void {
    this.sink!.ended = true;
    this.release();
  }

  private release(): void {
    const sink = this.sink!;
    removeSocketCloseHook(this.subscriber.socket, this);
    this.engine.release(this.entry!, sink);
    this.planner.release(sink.plan);
  }
}
