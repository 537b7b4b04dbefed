/**
 * Owns this instance's subscription channels: one per topic with subscribers here,
 * subscribed to the pub/sub transport while it has any, and torn down with the last one.
 */
import { execute, type GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { createLoaders, sharedContext, type Context } from '../context';
import { formatGraphQLError, type FormatOptions } from '../errors';
import { MessageChannel, type MessageChannelDeps } from '../messages/message.channel';
import type { PubSub } from '../pubsub';
import type { Services } from '../services';
import type { UserService } from '../users/user.service';
import { TypingChannel } from '../typing/typing.service';
import { Channel, Sink, sinkIterator, type Renderer } from './fanout';
import { Planner } from './plan';

interface Entry {
  channel: Channel;
  ready: Promise<void>;
  unsubscribe?: () => void;
  /** Subscribers attached or attaching; the channel closes when it drops to 0. */
  refs: number;
}

export interface RealtimeOptions {
  pubsub: PubSub;
  users: UserService;
  messages: MessageChannelDeps;
  format: FormatOptions;
  /** A subscriber whose socket has more than this buffered is disconnected. */
  maxBufferedBytes: number;
  logger: Logger;
  /** Called after a live event was written to `count` subscribers of `topic` (metrics). Default none. */
  onDelivered?: (count: number, event: unknown, topic: string) => void;
  /** How events are executed (see FANOUT in config.ts). Default `grouped`. */
  fanout?: 'grouped' | 'per-subscriber';
}

export type SubscribeSpec =
  | { kind: 'messages'; topic: string; conversation: string; after?: number }
  | { kind: 'typing'; topic: string }
  | { kind: 'plain'; topic: string };

/** Counters for /metrics and leak checks. */
export interface RealtimeStats {
  channels: number;
  subscribers: number;
  groups: number;
  /** Subscription plans in use (each kept only while it has subscribers). */
  plans: number;
}

export class RealtimeService {
  private readonly entries = new Map<string, Entry>();
  private schema?: GraphQLSchema;
  private planner?: Planner;

  constructor(private readonly options: RealtimeOptions) {}

  /** The schema is built after the services (its resolvers need them). */
  setSchema(schema: GraphQLSchema): void {
    this.schema = schema;
    this.planner = new Planner(schema, this.options.fanout === 'per-subscriber');
  }

  private readonly render: Renderer = async (plan, event, viewer, shared) => {
    const result = await execute({
      schema: this.schema!,
      document: plan.document,
      rootValue: event,
      contextValue: viewer ?? shared,
      variableValues: plan.variables,
      operationName: plan.operationName,
    });
    if (!result.errors) return JSON.stringify({ data: result.data });
    return JSON.stringify({
      data: result.data ?? null,
      errors: result.errors.map((e) => formatGraphQLError(e, this.options.format)),
    });
  };

  private services?: Services;

  /** The services the shared subscription context exposes (set once they all exist). */
  setServices(services: Services): void {
    this.services = services;
  }

  private readonly makeShared = (): Context => sharedContext(this.services!, createLoaders(this.options.users));

  private readonly onChannelError = (err: unknown) => {
    this.options.logger.warn({ err }, 'subscription delivery failed; will retry');
  };

  private createChannel(spec: SubscribeSpec): Channel {
    if (spec.kind === 'messages') {
      return new MessageChannel(
        spec.topic,
        spec.conversation,
        this.render,
        this.makeShared,
        this.onChannelError,
        this.options.messages,
      );
    }
    if (spec.kind === 'typing') {
      return new TypingChannel(spec.topic, this.render, this.makeShared, this.onChannelError);
    }
    return new Channel(spec.topic, this.render, this.makeShared, this.onChannelError);
  }

  private acquire(spec: SubscribeSpec): Entry {
    let entry = this.entries.get(spec.topic);
    if (!entry) {
      const channel = this.createChannel(spec);
      channel.onDelivered = this.options.onDelivered;
      const created: Entry = { channel, refs: 0, ready: Promise.resolve() };
      created.ready = (async () => {
        created.unsubscribe = await this.options.pubsub.subscribe(spec.topic, (ev) => channel.onEvent(ev));
        if (channel instanceof MessageChannel) await channel.init();
      })();
      created.ready.catch(() => {
        // A channel that failed to start is dropped; the next subscriber tries afresh.
        if (this.entries.get(spec.topic) === created) this.entries.delete(spec.topic);
        created.unsubscribe?.();
      });
      this.entries.set(spec.topic, created);
      entry = created;
    }
    entry.refs++;
    return entry;
  }

  private release(topic: string, entry: Entry, sink: Sink): void {
    entry.channel.leave(sink);
    entry.refs--;
    if (entry.refs === 0 && this.entries.get(topic) === entry) {
      this.entries.delete(topic);
      entry.channel.closed = true;
      entry.unsubscribe?.();
    }
  }

  /** The async iterator for a fan-out subscription resolver (see sinkIterator). */
  subscribe(ctx: Context, spec: SubscribeSpec): AsyncIterableIterator<unknown> {
    const ws = ctx.ws;
    if (!ws || !this.planner) throw new Error('Subscriptions are served over WebSocket only');
    const planner = this.planner;
    return sinkIterator(async (end, push) => {
      const plan = planner.plan(ws.query, ws.document, ws.operationName, ws.variables, ctx.user.id);
      const sink = new Sink(ctx, plan, this.options.maxBufferedBytes, end, plan.perSubscriber ? push : undefined);
      const entry = this.acquire(spec);
      // The socket's end ends its subscriptions even if graphql-ws lost track of one (an id
      // reused while its first subscription was being set up): nothing outlives its socket.
      const onClose = () => end();
      ws.socket.once('close', onClose);
      const detach = () => {
        ws.socket.off('close', onClose);
        this.release(spec.topic, entry, sink);
        planner.release(plan);
      };
      try {
        await entry.ready;
        if (entry.channel instanceof MessageChannel) {
          await entry.channel.attach(sink, spec.kind === 'messages' ? spec.after : undefined);
        } else {
          entry.channel.join(sink);
        }
      } catch (err) {
        detach();
        throw err;
      }
      return () => {
        sink.ended = true;
        detach();
      };
    });
  }

  stats(): RealtimeStats {
    let subscribers = 0;
    let groups = 0;
    for (const e of this.entries.values()) {
      const s = e.channel.stats();
      subscribers += s.sinks;
      groups += s.groups;
    }
    return { channels: this.entries.size, subscribers, groups, plans: this.planner?.size ?? 0 };
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
