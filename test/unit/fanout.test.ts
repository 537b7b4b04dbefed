/**
 * The fan-out's grouping (src/realtime/plan.ts Planner, src/realtime/fanout.ts Channel,
 * Group, Sink) as an algorithm: which subscribers share one execution, what each socket
 * receives. Sockets are plain objects here; the integration tests use real ones.
 */
import { parse, type GraphQLSchema } from 'graphql';
import {
  Channel,
  SLOW_CONSUMER_CLOSE,
  Sink,
  type Push,
  type Renderer,
  type Subscriber,
} from '../../src/realtime/fanout';
import { Planner, type Plan } from '../../src/realtime/plan';
import { createSchema } from '../../src/schema';

// ---- construction: the only lines that know the constructors' shapes ----

function makePlanner(schema: GraphQLSchema, perSubscriber = false): Planner {
  return new Planner(schema, perSubscriber);
}

function makeChannel(topic: string, render: Renderer, onError: (err: unknown) => void = failOnError): Channel {
  return new Channel(topic, { render, onError });
}

function makeSink(
  ctx: Subscriber,
  plan: Plan,
  opts: { maxBufferedBytes?: number; onEnd?: (e?: unknown) => void; push?: Push } = {},
): Sink {
  const push = opts.push;
  return new Sink(ctx, plan, opts.maxBufferedBytes ?? 1 << 20, {
    end: opts.onEnd ?? (() => undefined),
    push: (event) => {
      if (!push) throw new Error('push in grouped mode');
      return push(event);
    },
  });
}

// ---- fakes ----

const failOnError = (err: unknown) => {
  throw err;
};

/** The context value a viewer-dependent group executes with (the engine passes the subscriber's own). */
type ViewerContext = { user: { id: string } } | undefined;

interface FakeSocket {
  readyState: number;
  bufferedAmount: number;
  sent: string[];
  closed?: { code: number; reason: string };
  send(data: Buffer, opts: { binary: boolean }): void;
  close(code: number, reason: string): void;
}

function fakeSocket(): FakeSocket {
  const s: FakeSocket = {
    readyState: 1,
    bufferedAmount: 0,
    sent: [],
    send(data, opts) {
      expect(opts.binary).toBe(false);
      s.sent.push(data.toString('utf8'));
    },
    close(code, reason) {
      s.closed = { code, reason };
      s.readyState = 3;
    },
  };
  return s;
}

/** A subscriber: a viewer with one subscription on one socket, planned like the realtime engine does. */
function subscriber(
  planner: Planner,
  viewerId: string,
  query: string,
  variables: Record<string, unknown> = {},
  subscriptionId = `sub-${viewerId}`,
) {
  const socket = fakeSocket();
  const document = parse(query);
  const ctx: Subscriber = {
    viewerId,
    socket: socket as unknown as Subscriber['socket'],
    subscriptionId,
    query,
    document,
    operationName: null,
    variables,
    contextValue: { user: { id: viewerId } },
  };
  const plan = planner.plan(query, document, null, variables, viewerId);
  return { socket, ctx, plan };
}

/** A render that records its calls and echoes what it was given. */
function recordingRender() {
  const calls: Array<{ key: string; event: unknown; viewer?: string }> = [];
  const render: Renderer = (plan, event, context) => {
    const viewer = context as ViewerContext;
    calls.push({ key: plan.key, event, viewer: viewer?.user.id });
    return Promise.resolve(JSON.stringify({ data: { event, viewer: viewer?.user.id ?? null } }));
  };
  return { render, calls };
}

const frames = (s: FakeSocket) => s.sent.map((f) => JSON.parse(f) as { id: string; type: string; payload: unknown });

const PLAIN = 'subscription($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id text } }';
const MINE = 'subscription { messageAdded { id mine } }';
const MINE_IN_FRAGMENT = 'subscription { messageAdded { ...F } } fragment F on Message { id ... on Message { mine } }';
const INCLUDE = 'subscription($s: Boolean!) { messageAdded { id sender @include(if: $s) { id } } }';

let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await createSchema();
});

describe('Planner', () => {
  test('identical documents and variables share one plan whoever subscribes', () => {
    const planner = makePlanner(schema);
    const a = subscriber(planner, 'alice', PLAIN);
    const b = subscriber(planner, 'bob', PLAIN);
    expect(a.plan.viewerDependent).toBe(false);
    expect(b.plan).toBe(a.plan);
  });

  test('the root field’s own arguments (topic and replay start) do not split groups', () => {
    const planner = makePlanner(schema);
    const a = subscriber(planner, 'alice', PLAIN, { with: 'x', after: 'c1' });
    const b = subscriber(planner, 'bob', PLAIN, { with: 'y' });
    expect(b.plan.key).toBe(a.plan.key);
  });

  test('a document selecting `mine` is planned per viewer', () => {
    const planner = makePlanner(schema);
    const a = subscriber(planner, 'alice', MINE);
    const a2 = subscriber(planner, 'alice', MINE, {}, 'second tab');
    const b = subscriber(planner, 'bob', MINE);
    expect(a.plan.viewerDependent).toBe(true);
    expect(b.plan.key).not.toBe(a.plan.key);
    expect(a2.plan.key).toBe(a.plan.key);
  });

  test('`mine` hidden in a fragment or an inline fragment is still found', () => {
    const planner = makePlanner(schema);
    const a = subscriber(planner, 'alice', MINE_IN_FRAGMENT);
    const b = subscriber(planner, 'bob', MINE_IN_FRAGMENT);
    expect(a.plan.viewerDependent).toBe(true);
    expect(b.plan.key).not.toBe(a.plan.key);
  });

  test('variables used inside the selection split groups; equal values share', () => {
    const planner = makePlanner(schema);
    const yes1 = subscriber(planner, 'alice', INCLUDE, { s: true });
    const yes2 = subscriber(planner, 'bob', INCLUDE, { s: true });
    const no = subscriber(planner, 'carol', INCLUDE, { s: false });
    expect(yes2.plan).toBe(yes1.plan);
    expect(no.plan.key).not.toBe(yes1.plan.key);
    expect(no.plan.viewerDependent).toBe(false);
  });

  test('a different document text is a different plan even when equivalent', () => {
    const planner = makePlanner(schema);
    const a = subscriber(planner, 'alice', 'subscription { messageAdded { id text } }');
    const b = subscriber(planner, 'bob', 'subscription { messageAdded { text id } }');
    expect(b.plan.key).not.toBe(a.plan.key);
  });

  test('per-subscriber mode is carried on every plan', () => {
    expect(subscriber(makePlanner(schema, true), 'a', PLAIN).plan.perSubscriber).toBe(true);
    expect(subscriber(makePlanner(schema, false), 'a', PLAIN).plan.perSubscriber).toBe(false);
  });

  test('each document is analysed once while cached; the caches are bounded (LRU)', () => {
    // Count analyses through the schema: analyze() asks it for the subscription type once per run.
    let analyses = 0;
    const counting = new Proxy(schema, {
      get(target, prop, receiver) {
        if (prop === 'getSubscriptionType') analyses++;
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const planner = makePlanner(counting);
    const doc = (i: number) => `subscription { messageAdded { id text } } # ${i}`;
    const first = subscriber(planner, 'alice', doc(0)).plan;
    subscriber(planner, 'bob', doc(0));
    expect(analyses).toBe(1);

    for (let i = 1; i <= 1000; i++) subscriber(planner, 'alice', doc(i));
    expect(analyses).toBe(1001);
    // Document 0 was the least recently used of 1001: its analysis was evicted and is redone.
    const again = subscriber(planner, 'carol', doc(0)).plan;
    expect(analyses).toBe(1002);
    expect(again.key).toBe(first.key);
  });

  test('a plan lives while it has subscribers: the last release drops it, and it is rebuilt with the same key', () => {
    const planner = makePlanner(schema);
    const first = subscriber(planner, 'alice', INCLUDE, { s: true }).plan;
    expect(subscriber(planner, 'bob', INCLUDE, { s: true }).plan).toBe(first);
    // Many other plans do not push one in use out.
    for (let i = 0; i < 2000; i++) planner.release(subscriber(planner, `v${i}`, MINE).plan);
    expect(subscriber(planner, 'carol', INCLUDE, { s: true }).plan).toBe(first);
    expect(planner.size).toBe(1);
    for (let i = 0; i < 3; i++) planner.release(first);
    expect(planner.size).toBe(0);
    const rebuilt = subscriber(planner, 'bob', INCLUDE, { s: true }).plan;
    expect(rebuilt).not.toBe(first);
    expect(rebuilt.key).toBe(first.key);
  });
});

describe('Channel grouping and delivery', () => {
  test('subscribers with one plan form one group: one render per event, the same payload on every socket', async () => {
    const planner = makePlanner(schema);
    const { render, calls } = recordingRender();
    const channel = makeChannel('t', render);
    const subs = ['alice', 'bob', 'carol'].map((v) => subscriber(planner, v, PLAIN));
    for (const s of subs) channel.join(makeSink(s.ctx, s.plan));
    expect(channel.stats()).toEqual({ sinks: 3, groups: 1 });

    await channel.dispatch({ n: 1 });
    expect(calls).toEqual([{ key: subs[0].plan.key, event: { n: 1 }, viewer: undefined }]);
    for (const s of subs) {
      expect(frames(s.socket)).toEqual([
        { id: `sub-${s.ctx.viewerId}`, type: 'next', payload: { data: { event: { n: 1 }, viewer: null } } },
      ]);
    }
  });

  test('viewer-dependent subscribers are rendered once per viewer with their own context', async () => {
    const planner = makePlanner(schema);
    const { render, calls } = recordingRender();
    const channel = makeChannel('t', render);
    const alice = subscriber(planner, 'alice', MINE);
    const aliceTab = subscriber(planner, 'alice', MINE, {}, 'tab2');
    const bob = subscriber(planner, 'bob', MINE);
    for (const s of [alice, aliceTab, bob]) channel.join(makeSink(s.ctx, s.plan));
    expect(channel.stats()).toEqual({ sinks: 3, groups: 2 });

    await channel.dispatch('hello');
    expect(calls.map((c) => c.viewer).sort()).toEqual(['alice', 'bob']);
    expect(frames(alice.socket)[0].payload).toEqual({ data: { event: 'hello', viewer: 'alice' } });
    expect(frames(aliceTab.socket)[0]).toEqual({
      id: 'tab2',
      type: 'next',
      payload: { data: { event: 'hello', viewer: 'alice' } },
    });
    expect(frames(bob.socket)[0].payload).toEqual({ data: { event: 'hello', viewer: 'bob' } });
  });

  test('different variables in the selection make different groups', async () => {
    const planner = makePlanner(schema);
    const { render, calls } = recordingRender();
    const channel = makeChannel('t', render);
    for (const [v, s] of [
      ['a', true],
      ['b', true],
      ['c', false],
    ] as const) {
      const sub = subscriber(planner, v, INCLUDE, { s });
      channel.join(makeSink(sub.ctx, sub.plan));
    }
    expect(channel.stats()).toEqual({ sinks: 3, groups: 2 });
    await channel.dispatch(1);
    expect(calls).toHaveLength(2);
  });

  test('joining twice counts once; leaving the last sink of a group removes the group', () => {
    const planner = makePlanner(schema);
    const channel = makeChannel('t', recordingRender().render);
    const a = subscriber(planner, 'a', PLAIN);
    const b = subscriber(planner, 'b', MINE);
    const sa = makeSink(a.ctx, a.plan);
    const sb = makeSink(b.ctx, b.plan);
    channel.join(sa);
    channel.join(sa);
    channel.join(sb);
    expect(channel.size).toBe(2);
    expect(channel.stats()).toEqual({ sinks: 2, groups: 2 });
    channel.leave(sb);
    channel.leave(sb);
    expect(channel.stats()).toEqual({ sinks: 1, groups: 1 });
    channel.leave(sa);
    expect(channel.stats()).toEqual({ sinks: 0, groups: 0 });
  });

  test('`accept` filters subscribers without rendering twice', async () => {
    const planner = makePlanner(schema);
    const { render, calls } = recordingRender();
    const channel = makeChannel('t', render);
    const a = subscriber(planner, 'alice', PLAIN);
    const b = subscriber(planner, 'bob', PLAIN);
    channel.join(makeSink(a.ctx, a.plan));
    channel.join(makeSink(b.ctx, b.plan));
    await channel.dispatch('x', (sink) => sink.viewerId !== 'alice');
    expect(calls).toHaveLength(1);
    expect(a.socket.sent).toEqual([]);
    expect(b.socket.sent).toHaveLength(1);
  });

  test('a render failure is reported and the other groups still receive the event', async () => {
    const planner = makePlanner(schema);
    const errors: unknown[] = [];
    const render: Renderer = (plan, event, viewer) =>
      (viewer as ViewerContext)?.user.id === 'bad'
        ? Promise.reject(new Error('render failed'))
        : Promise.resolve(JSON.stringify({ data: event }));
    const channel = makeChannel('t', render, (e) => errors.push(e));
    const bad = subscriber(planner, 'bad', MINE);
    const good = subscriber(planner, 'good', MINE);
    channel.join(makeSink(bad.ctx, bad.plan));
    channel.join(makeSink(good.ctx, good.plan));
    await channel.dispatch(7);
    expect(errors).toEqual([new Error('render failed')]);
    expect(bad.socket.sent).toEqual([]);
    expect(frames(good.socket)[0].payload).toEqual({ data: 7 });
  });

  test('events from the transport are delivered in arrival order even when an earlier render finishes later', async () => {
    const planner = makePlanner(schema);
    const renders = new Map<unknown, () => void>();
    const started: unknown[] = [];
    const render: Renderer = (_p, event) =>
      new Promise((resolve) => {
        started.push(event);
        renders.set(event, () => resolve(JSON.stringify({ data: event })));
      });
    const channel = makeChannel('t', render);
    const a = subscriber(planner, 'a', PLAIN);
    channel.join(makeSink(a.ctx, a.plan));
    channel.onEvent('first');
    channel.onEvent('second');
    await Promise.resolve();
    await Promise.resolve();
    // The second event is not rendered before the first one is out.
    expect(started).toEqual(['first']);
    renders.get('first')!();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['first', 'second']);
    renders.get('second')!();
    await channel.enqueue(() => Promise.resolve());
    expect(frames(a.socket).map((f) => f.payload)).toEqual([{ data: 'first' }, { data: 'second' }]);
  });

  test('onDelivered is told how many frames were written', async () => {
    const planner = makePlanner(schema);
    const counts: Array<[number, string, Date | undefined]> = [];
    const channel = new Channel('topic-x', {
      render: recordingRender().render,
      onError: failOnError,
      onDelivered: (n, topic, createdAt) => counts.push([n, topic, createdAt]),
    });
    const a = subscriber(planner, 'a', PLAIN);
    const b = subscriber(planner, 'b', PLAIN);
    channel.join(makeSink(a.ctx, a.plan));
    channel.join(makeSink(b.ctx, b.plan));
    b.socket.readyState = 3;
    await channel.dispatch('e');
    expect(counts).toEqual([[1, 'topic-x', undefined]]);
  });

  test('endAll ends every subscription with the error and empties the channel', () => {
    const planner = makePlanner(schema);
    const channel = makeChannel('t', recordingRender().render);
    const ended: unknown[] = [];
    for (const v of ['a', 'b']) {
      const s = subscriber(planner, v, v === 'a' ? PLAIN : MINE);
      channel.join(makeSink(s.ctx, s.plan, { onEnd: (e) => ended.push(e) }));
    }
    const err = new Error('stopping');
    channel.endAll(err);
    expect(ended).toEqual([err, err]);
    expect(channel.stats()).toEqual({ sinks: 0, groups: 0 });
  });
});

describe('Sink', () => {
  const payload = (json: string) => ({ bytes: Buffer.from(json + '}') });

  test('writes a next frame with its own subscription id, escaped', () => {
    const planner = makePlanner(schema);
    const s = subscriber(planner, 'a', PLAIN, {}, 'id "with" quotes \u2028 ü');
    const sink = makeSink(s.ctx, s.plan);
    expect(sink.send(payload('{"data":{"x":"é😀"}}'))).toBe(true);
    expect(frames(s.socket)).toEqual([
      { id: 'id "with" quotes \u2028 ü', type: 'next', payload: { data: { x: 'é😀' } } },
    ]);
  });

  test('sendSeq never sends a sequence number twice or backwards', () => {
    const planner = makePlanner(schema);
    const s = subscriber(planner, 'a', PLAIN);
    const sink = makeSink(s.ctx, s.plan);
    const sent = [1, 2, 2, 1, 4, 3, 5].map((seq) => sink.sendSeq(seq, payload(String(seq))));
    expect(sent).toEqual([true, true, false, false, true, false, true]);
    expect(frames(s.socket).map((f) => f.payload)).toEqual([1, 2, 4, 5]);
    expect(sink.lastSeq).toBe(5);
  });

  test('nothing is written to a socket that is not open, or after the sink ended', () => {
    const planner = makePlanner(schema);
    const s = subscriber(planner, 'a', PLAIN);
    let ends = 0;
    const sink = makeSink(s.ctx, s.plan, { onEnd: () => ends++ });
    s.socket.readyState = 2;
    expect(sink.send(payload('1'))).toBe(false);
    s.socket.readyState = 1;
    sink.end();
    sink.end();
    expect(ends).toBe(1);
    expect(sink.send(payload('2'))).toBe(false);
    expect(s.socket.sent).toEqual([]);
  });

  test('a subscriber whose socket buffers more than the limit is closed as too slow instead of buffering more', () => {
    const planner = makePlanner(schema);
    const s = subscriber(planner, 'a', PLAIN);
    const sink = makeSink(s.ctx, s.plan, { maxBufferedBytes: 1000 });
    s.socket.bufferedAmount = 1000;
    expect(sink.send(payload('1'))).toBe(true);
    s.socket.bufferedAmount = 1001;
    expect(sink.send(payload('2'))).toBe(false);
    expect(s.socket.closed).toEqual({ code: SLOW_CONSUMER_CLOSE.code, reason: SLOW_CONSUMER_CLOSE.reason });
    expect(frames(s.socket).map((f) => f.payload)).toEqual([1]);
  });

  test('per-subscriber mode hands raw events to the iterator, in order, once per sequence number', () => {
    const planner = makePlanner(schema, true);
    const s = subscriber(planner, 'a', PLAIN);
    const pushed: unknown[] = [];
    const sink = makeSink(s.ctx, s.plan, { push: (e) => (pushed.push(e), true) });
    expect([sink.sendEvent('a', 1), sink.sendEvent('dup', 1), sink.sendEvent('b', 2), sink.sendEvent('c')]).toEqual([
      true,
      false,
      true,
      true,
    ]);
    expect(pushed).toEqual(['a', 'b', 'c']);
    expect(s.socket.sent).toEqual([]);
  });

  test('per-subscriber mode closes a subscriber whose iterator queue is full', () => {
    const planner = makePlanner(schema, true);
    const s = subscriber(planner, 'a', PLAIN);
    const sink = makeSink(s.ctx, s.plan, { push: () => false });
    expect(sink.sendEvent('x')).toBe(false);
    expect(s.socket.closed?.code).toBe(SLOW_CONSUMER_CLOSE.code);
  });
});
