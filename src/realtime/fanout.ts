/**
 * Subscription fan-out: one execution and one JSON serialisation per event and group of
 * identical subscribers, then the same bytes written to every socket of the group.
 *
 * graphql-ws would otherwise run `execute()` and `JSON.stringify` once per subscriber per
 * event. Here a subscription's async iterator never yields to graphql-ws; instead its Sink
 * writes `next` frames to the socket directly. graphql-ws still owns the protocol: it
 * validates and starts the subscription, and when the client completes or disconnects it
 * calls `return()` on the iterator, which detaches the sink before anything else is sent.
 *
 * With `FANOUT=per-subscriber` the same channels (and so the same ordering, gap filling and
 * replay) hand each raw event to the subscription's iterator instead, which yields it:
 * graphql-js then executes and graphql-ws serialises it per subscriber, exactly as stock
 * graphql-ws does. That mode exists as the benchmark's baseline.
 */
import type { DocumentNode } from 'graphql';
import type { WebSocket } from 'ws';
import type { Plan } from './plan';
import { canPreEncode, isPlainId, nextPrefix, sendNextFrame, sendTextFrame, sendTextFrames } from './ws-frame';

const OPEN = 1;

/** Why a subscriber was cut off because it could not keep up (it resumes with `after`). */
export const SLOW_CONSUMER_CLOSE = {
  code: 1013,
  reason: 'Subscriber too slow; reconnect and resume with after',
} as const;

/** A rendered `next` payload, UTF-8 encoded once per group and event, with the frame's closing brace. */
export interface Payload {
  readonly bytes: Buffer;
}

/** A payload and its number in an ordered channel (see Sink.sendSeqs). */
export interface SeqPayload {
  readonly seq: number;
  readonly payload: Payload;
}

export function toPayload(json: string): Payload {
  return { bytes: Buffer.from(json + '}') };
}

/** Per-subscriber mode: events waiting for graphql-ws before the subscriber counts as too slow. */
export const MAX_QUEUED_EVENTS = 10000;

/** Hands an event to the iterator (per-subscriber mode); false when its queue is full. */
export type Push = (event: unknown) => boolean;

/** One graphql-ws subscription operation, as the WebSocket transport hands it to the fan-out. */
export interface Subscriber {
  readonly viewerId: string;
  readonly socket: WebSocket;
  readonly subscriptionId: string;
  /** The operation as the client sent it (the fan-out groups subscribers by it). */
  readonly query: string;
  readonly document: DocumentNode;
  readonly operationName?: string | null;
  readonly variables: Record<string, unknown>;
  /** The operation's own context value: viewer-dependent plans execute with it. */
  readonly contextValue: unknown;
}

/**
 * What a Sink reports to: the subscription's iterator (SinkIterator). An object rather than two
 * callbacks, so that a subscription holds no closures for them.
 */
export interface SinkOwner {
  /** The subscription ended (with an error: sent to the client as an `error` message). */
  end(error?: unknown): void;
  /** Per-subscriber mode: hands an event to the iterator; false when its queue is full. */
  push(event: unknown): boolean;
}

/** One graphql-ws subscription, as the fan-out sees it. */
export class Sink {
  /** Highest sequence number delivered (ordered channels). */
  lastSeq = 0;
  ended = false;
  /**
   * `{"id":<subscription id>,"type":"next","payload":` UTF-8 encoded, only for an id that
   * needs escaping; a plain id (a UUID: what graphql-ws's client sends) is written into each
   * frame as is (ws-frame.ts), so an idle subscriber keeps no Buffer for it.
   */
  private readonly prefix?: Buffer;
  /** Whether `next` frames can be handed to ws pre-encoded (ws-frame.ts). */
  private readonly preEncode: boolean;

  constructor(
    readonly subscriber: Subscriber,
    readonly plan: Plan,
    private readonly maxBufferedBytes: number,
    private readonly owner: SinkOwner,
  ) {
    if (!isPlainId(subscriber.subscriptionId)) {
      this.prefix = Buffer.from(`{"id":${JSON.stringify(subscriber.subscriptionId)},"type":"next","payload":`);
    }
    this.preEncode = canPreEncode(subscriber.socket);
  }

  /** False once the subscription ended or its socket started closing: work for it can stop. */
  get live(): boolean {
    return !this.ended && this.subscriber.socket.readyState === OPEN;
  }

  get viewerId(): string {
    return this.subscriber.viewerId;
  }

  /** Writes one `next` frame: this subscription's prefix, then the group's shared serialised payload. */
  send(payload: Payload): boolean {
    const socket = this.subscriber.socket;
    if (!this.writable(socket)) return false;
    // One allocation, two copies of bytes encoded once, one write: no string concatenation
    // that ws would then measure and UTF-8 encode again for every socket.
    if (this.prefix) sendTextFrame(socket, this.prefix, payload.bytes, this.preEncode);
    else sendNextFrame(socket, this.subscriber.subscriptionId, payload.bytes, this.preEncode);
    return true;
  }

  /** Whether a frame may be written now; a socket over its buffer limit is closed instead. */
  private writable(socket: Subscriber['socket']): boolean {
    if (this.ended || socket.readyState !== OPEN) return false;
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      // Buffering without bound would let one stalled phone exhaust the server's memory.
      socket.close(SLOW_CONSUMER_CLOSE.code, SLOW_CONSUMER_CLOSE.reason);
      return false;
    }
    return true;
  }

  /** Delivers an event of an ordered channel once: never a sequence number twice or backwards. */
  sendSeq(seq: number, payload: Payload): boolean {
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    return this.send(payload);
  }

  /**
   * Delivers numbered events at once, as {@link sendSeq} would one after the other (numbers at
   * or below what the subscriber has are skipped), in one socket write: a replay page is one
   * system call instead of one per message. The slow-consumer check is made once, before the
   * batch (a page is at most ORDERED_BATCH frames beyond the limit). Returns how many were written.
   */
  sendSeqs(batch: readonly SeqPayload[]): number {
    const bodies: Buffer[] = [];
    for (const { seq, payload } of batch) {
      if (seq <= this.lastSeq) continue;
      this.lastSeq = seq;
      bodies.push(payload.bytes);
    }
    const socket = this.subscriber.socket;
    if (bodies.length === 0 || !this.writable(socket)) return 0;
    sendTextFrames(socket, this.prefix ?? nextPrefix(this.subscriber.subscriptionId), bodies, this.preEncode);
    return bodies.length;
  }

  /** Per-subscriber mode: yields the raw event to graphql-js (ordered channels pass `seq`). */
  sendEvent(event: unknown, seq?: number): boolean {
    if (seq !== undefined) {
      if (seq <= this.lastSeq) return false;
      this.lastSeq = seq;
    }
    if (this.ended) return false;
    if (!this.owner.push(event)) {
      this.subscriber.socket.close(SLOW_CONSUMER_CLOSE.code, SLOW_CONSUMER_CLOSE.reason);
      return false;
    }
    return true;
  }

  /** Ends the subscription; with an error the client receives it as an `error` message. */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.end(error);
  }
}

function someAccepted(sinks: Set<Sink>, accept: (sink: Sink) => boolean): boolean {
  for (const sink of sinks) if (accept(sink)) return true;
  return false;
}

/** Subscribers that receive identical payloads. */
export class Group {
  readonly sinks = new Set<Sink>();
  constructor(readonly plan: Plan) {}

  /** The context to execute with: a viewer's own for viewer-dependent plans, else none. */
  get viewerContext(): unknown {
    if (!this.plan.viewerDependent) return undefined;
    for (const s of this.sinks) return s.subscriber.contextValue;
    return undefined;
  }
}

/**
 * Executes an event for a group and returns the serialised `payload` of the `next` frame:
 * with the viewer's own context value for viewer-dependent plans, else with a shared one.
 */
export type Renderer = (plan: Plan, event: unknown, viewer: unknown) => Promise<string>;

/** What every channel gets from the engine. */
export interface ChannelTools {
  render: Renderer;
  /** Reports a failed delivery attempt (logged; ordered channels retry). */
  onError: (err: unknown) => void;
  /** Told how many frames each dispatched event wrote, and when its message was stored (metrics). */
  onDelivered?: (count: number, topic: string, createdAt?: Date) => void;
  /**
   * Waits for a replay slot (replay-gate.ts): resolves with its release once the replay may
   * run, throws RATE_LIMITED when too many wait. `live` says whether the subscriber is still
   * there (a gone one's turn is skipped). Default: no bound.
   */
  replaySlot?: (live: () => boolean) => Promise<() => void>;
  /** Told after each page of a replay was read: how many messages it held (metrics). */
  onReplayPage?: (messages: number) => void;
  /** Told how many executions (one per group it reached) a live event took (metrics). */
  onExecuted?: (count: number, topic: string) => void;
}

export interface ChannelStats {
  sinks: number;
  groups: number;
}

/** The subscribers of one topic on this instance. Events are dispatched one at a time, in order. */
export class Channel<E = unknown, O = unknown> {
  protected readonly groups = new Map<string, Group>();
  private queue: Promise<void> = Promise.resolve();
  private count = 0;
  closed = false;
  protected readonly render: Renderer;
  protected readonly onError: (err: unknown) => void;

  constructor(
    readonly topic: string,
    protected readonly tools: ChannelTools,
  ) {
    this.render = tools.render;
    this.onError = tools.onError;
  }

  /** When the event's message was stored, for the delivery latency metric (channels of messages). */
  protected eventTime(event: E): Date | undefined {
    void event;
    return undefined;
  }

  /** Called once the pub/sub subscription is live, before any subscriber attaches. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  /** Adds a subscriber; `options` are what the channel kind's route returned for it. */
  attach(sink: Sink, options: O): Promise<void> {
    void options;
    this.join(sink);
    return Promise.resolve();
  }

  get size(): number {
    return this.count;
  }

  stats(): ChannelStats {
    return { sinks: this.count, groups: this.groups.size };
  }

  join(sink: Sink): void {
    let g = this.groups.get(sink.plan.key);
    if (!g) this.groups.set(sink.plan.key, (g = new Group(sink.plan)));
    if (!g.sinks.has(sink)) {
      g.sinks.add(sink);
      this.count++;
    }
  }

  leave(sink: Sink): void {
    const g = this.groups.get(sink.plan.key);
    if (g?.sinks.delete(sink)) {
      this.count--;
      if (g.sinks.size === 0) this.groups.delete(sink.plan.key);
    }
  }

  /** Runs `job` after every event and job queued before it. */
  enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Sends an event to every subscriber `accept` lets through (default: all). */
  async dispatch(event: E, accept?: (sink: Sink) => boolean, seq?: number): Promise<void> {
    let delivered = 0;
    let executed = 0;
    for (const group of [...this.groups.values()]) {
      if (group.plan.perSubscriber) {
        for (const sink of group.sinks) if (!accept || accept(sink)) sink.sendEvent(event, seq);
        continue;
      }
      // A filtered event (blocks, shadow bans) is not executed for a group it reaches no one in.
      if (accept && !someAccepted(group.sinks, accept)) continue;
      let payload: Payload;
      try {
        executed++;
        payload = toPayload(await this.render(group.plan, event, group.viewerContext));
      } catch (err) {
        this.onError(err);
        continue;
      }
      for (const sink of group.sinks) {
        if (accept && !accept(sink)) continue;
        if (seq === undefined ? sink.send(payload) : sink.sendSeq(seq, payload)) delivered++;
      }
    }
    this.tools.onDelivered?.(delivered, this.topic, this.eventTime(event));
    if (executed > 0) this.tools.onExecuted?.(executed, this.topic);
  }

  /** Delivers an event from the pub/sub transport (subclasses add ordering or filtering). */
  onEvent(event: E): void {
    void this.enqueue(() => this.dispatch(event));
  }

  /** Ends every subscription (the channel failed or the server is stopping). */
  endAll(error?: unknown): void {
    for (const g of this.groups.values()) for (const s of g.sinks) s.end(error);
    this.groups.clear();
    this.count = 0;
  }
}

/**
 * What a SinkIterator attaches on its first `next()` and detaches when it ends: the engine's
 * subscription to a channel (engine.ts).
 */
export interface Attachment {
  /** Attaches the subscription; `owner` is the iterator (its `end` and `push`). Rejects to end it with an error. */
  start(owner: SinkOwner): Promise<void>;
  /** Detaches it again (called once, only after `start` resolved). */
  detach(): void;
}

/** Per-subscriber mode: turns a raw event into the response graphql-ws sends (see `respondWith`). */
export type Respond<A> = (arg: A, event: unknown) => unknown;

/**
 * The async iterator handed to graphql-js for a fan-out subscription. Its first `next()`
 * attaches the subscriber (`attachment.start`). In grouped mode it never yields and settles
 * only when the subscription ends, so graphql-ws sends `complete` (or `error`) exactly then;
 * in per-subscriber mode it yields what `push` queued, in order.
 *
 * A class with the Sink's owner methods on its prototype rather than closures: one of these
 * lives as long as each subscription, and methods cost nothing per instance.
 */
export class SinkIterator implements AsyncIterableIterator<unknown>, SinkOwner {
  /** Per-subscriber mode: `respond(respondArg, event)` is what is yielded (see `respondWith`). */
  private respond?: Respond<never>;
  private respondArg?: unknown;
  private finished = false;
  /** `attachment.start` was called (once, on the first `next()`). */
  private started = false;
  /** `attachment.start` resolved: `detach` is owed. */
  private attached = false;
  private failure?: { error: unknown };
  private queue?: unknown[];
  private waiter?: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void };

  constructor(private attachment: Attachment | undefined) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Yields `respond(arg, event)` instead of the raw event: the mapping graphql-js's `subscribe()`
   * would add around this iterator (executing each event with the event as root value), done
   * here so that grouped subscriptions, which never yield, carry no mapping state at all. A
   * function and its argument rather than a closure: the argument (the execution arguments)
   * is held by graphql-ws anyway, and `respond` is shared by every subscription.
   */
  respondWith<A>(respond: Respond<A>, arg: A): this {
    this.respond = respond;
    this.respondArg = arg;
    return this;
  }

  private settle(): Promise<IteratorResult<unknown>> | undefined {
    if (this.queue?.length) {
      const event = this.queue.shift();
      const respond = this.respond as Respond<unknown> | undefined;
      if (!respond) return Promise.resolve({ done: false, value: event });
      const arg = this.respondArg;
      return Promise.resolve(event)
        .then((e) => respond(arg, e))
        .then(
          (value) => ({ done: false, value }),
          (err: unknown) => {
            // As graphql-js does when executing an event fails: the source ends, the error is reported.
            this.finish();
            throw err;
          },
        );
    }
    if (!this.finished) return undefined;
    if (this.failure) {
      // Reported once; afterwards the iterator is simply done.
      const { error } = this.failure;
      this.failure = undefined;
      return Promise.reject(error);
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const r = this.settle();
    if (!r) return;
    this.waiter = undefined;
    r.then(w.resolve, w.reject);
  }

  private finish(error?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.queue = undefined;
    if (error !== undefined) this.failure = { error };
    if (this.attached) {
      this.attached = false;
      this.attachment!.detach();
    }
    this.attachment = undefined;
    this.wake();
  }

  /** SinkOwner: the subscription ended (its sink, its socket, or the channel ended it). */
  end(error?: unknown): void {
    this.finish(error);
  }

  /** SinkOwner: per-subscriber mode queues the event for graphql-js; false once the queue is full. */
  push(event: unknown): boolean {
    if (this.finished) return true;
    const queue = (this.queue ??= []);
    if (queue.length >= MAX_QUEUED_EVENTS) return false;
    queue.push(event);
    this.wake();
    return true;
  }

  next(): Promise<IteratorResult<unknown>> {
    const attachment = this.attachment;
    if (attachment && !this.started) {
      this.started = true;
      attachment.start(this).then(
        () => {
          if (this.finished) attachment.detach();
          else this.attached = true;
        },
        (err: unknown) => this.finish(err),
      );
    }
    return this.settle() ?? new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<unknown>> {
    this.finish();
    return Promise.resolve({ done: true, value: undefined });
  }

  throw(error: unknown): Promise<IteratorResult<unknown>> {
    this.finish();
    return Promise.reject(error);
  }
}

/**
 * A SinkIterator over a start function (tests, and anything that is not the engine):
 * `start(end, push)` attaches and resolves with the detach function.
 */
export function sinkIterator(
  start: (end: (error?: unknown) => void, push: Push) => Promise<() => void>,
): AsyncIterableIterator<unknown> {
  let detach: (() => void) | undefined;
  return new SinkIterator({
    start: async (owner) => {
      detach = await start(
        (error) => owner.end(error),
        (event) => owner.push(event),
      );
    },
    detach: () => detach?.(),
  });
}
