/**
 * The ordered message channel (src/messages/message.channel.ts) with a fake store and a
 * recording render: its ordering gate, gap filling, replay-then-live hand-over and retry
 * after a database error. Time is jest's fake clock; nothing sleeps.
 */
import { MessageChannel, REPLAY_BATCH } from '../../src/messages/message.channel';
import type { MessageDoc } from '../../src/messages/message.model';
import type { MessagePayload } from '../../src/messages/message.events';
import { Sink, type Renderer, type Subscriber } from '../../src/realtime/fanout';
import type { Plan } from '../../src/realtime/plan';

const CONV = 'lobby';

// ---- construction: the only lines that know the constructors' shapes ----

function makeChannel(store: FakeStore, render: Renderer, onError: (err: unknown) => void = () => undefined) {
  return new MessageChannel(
    `message:${CONV}`,
    CONV,
    { render, onError },
    { store: store, toPayloads: (docs: MessageDoc[]) => Promise.resolve(docs.map(payloadOf)) },
  );
}

function makeSink(ctx: Subscriber, plan: Plan, onEnd: (e?: unknown) => void = () => undefined): Sink {
  return new Sink(ctx, plan, 1 << 20, {
    end: onEnd,
    push: () => {
      throw new Error('push in grouped mode');
    },
  });
}

// ---- fakes ----

function doc(seq: number): MessageDoc {
  return { _id: `${CONV}:${seq}`, conversation: CONV, seq, text: `m${seq}` } as unknown as MessageDoc;
}

function payloadOf(d: MessageDoc): MessagePayload {
  return { message: d, sender: { id: 'sender' }, recipient: null } as unknown as MessagePayload;
}

/** An event as the pub/sub transport delivers it. */
const event = (seq: number) => payloadOf(doc(seq));

/** Messages 1..n of one conversation, with the calls the channel made and injectable failures. */
class FakeStore {
  readonly seqs = new Set<number>();
  readonly calls: string[] = [];
  noted = 0;
  /** Number of upcoming range() calls that fail like an unreachable database. */
  failRanges = 0;
  /** When set, range() waits for this before answering (to interleave live events with a replay). */
  gate?: Promise<void>;

  constructor(count = 0) {
    this.store(count);
  }

  /** Stores messages up to `n` (a send on some instance). */
  store(n: number): void {
    for (let s = 1; s <= n; s++) this.seqs.add(s);
  }

  head(conversation: string): Promise<number> {
    expect(conversation).toBe(CONV);
    this.calls.push('head');
    return Promise.resolve(Math.max(0, ...this.seqs));
  }

  noteStored(message: MessageDoc): void {
    expect(message.conversation).toBe(CONV);
    this.noted = Math.max(this.noted, message.seq);
  }

  async range(conversation: string, from: number, to: number, limit: number): Promise<MessageDoc[]> {
    expect(conversation).toBe(CONV);
    this.calls.push(`range ${from}-${to}/${limit}`);
    if (this.gate) await this.gate;
    if (this.failRanges > 0) {
      this.failRanges--;
      throw Object.assign(new Error('connection refused'), { name: 'MongoNetworkError' });
    }
    const out: MessageDoc[] = [];
    for (let s = Math.max(from, 1); s <= to && out.length < limit; s++) if (this.seqs.has(s)) out.push(doc(s));
    return out;
  }

  get ranges(): number {
    return this.calls.filter((c) => c.startsWith('range')).length;
  }
}

interface FakeSocket {
  readyState: number;
  bufferedAmount: number;
  sent: string[];
  send(data: Buffer): void;
  close(): void;
}

/** A subscriber with its socket; `viewerDependent` subscribers are rendered per viewer. */
function subscriber(id: string, key = 'plan', viewerDependent = false) {
  const socket: FakeSocket = {
    readyState: 1,
    bufferedAmount: 0,
    sent: [],
    send(data) {
      socket.sent.push(data.toString('utf8'));
    },
    close() {
      socket.readyState = 3;
    },
  };
  const ctx = { viewerId: id, socket, subscriptionId: id, contextValue: { user: { id } } } as unknown as Subscriber;
  const plan = { key, viewerDependent, perSubscriber: false, variables: {} } as unknown as Plan;
  const sink = makeSink(ctx, plan);
  /** Sequence numbers this subscriber received, in order. */
  const received = () => socket.sent.map((f) => (JSON.parse(f) as { payload: { data: number } }).payload.data);
  return { sink, socket, received };
}

/** A render that records which sequence numbers it executed. */
function recordingRender() {
  const rendered: number[] = [];
  const render: Renderer = (_plan, ev) => {
    const seq = (ev as MessagePayload).message.seq;
    rendered.push(seq);
    return Promise.resolve(JSON.stringify({ data: seq }));
  };
  return { render, rendered };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Waits until everything queued on the channel so far has run. */
const settled = (ch: MessageChannel) => ch.enqueue(() => Promise.resolve());

describe('MessageChannel ordering gate', () => {
  test('starts from the conversation’s head: older messages are not delivered live', async () => {
    const store = new FakeStore(7);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    expect(ch.lastSeq).toBe(7);
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV });
    store.store(8);
    ch.onEvent(event(8));
    await settled(ch);
    expect(a.received()).toEqual([8]);
    expect(store.ranges).toBe(0);
  });

  test('events that arrive out of order are delivered in order, without a database read', async () => {
    const store = new FakeStore(0);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV });
    store.store(3);
    ch.onEvent(event(3));
    ch.onEvent(event(1));
    ch.onEvent(event(2));
    await settled(ch);
    expect(a.received()).toEqual([1, 2, 3]);
    expect(store.ranges).toBe(0);
    expect(store.noted).toBe(3);
  });

  test('a gap is filled from the store before the event that jumped ahead', async () => {
    const store = new FakeStore(0);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV });
    store.store(5);
    ch.onEvent(event(5));
    await settled(ch);
    expect(a.received()).toEqual([1, 2, 3, 4, 5]);
    expect(store.calls).toEqual(['head', 'range 1-5/5']);
    // The missing events turning up late are already delivered.
    for (const s of [2, 4, 1, 3]) ch.onEvent(event(s));
    await settled(ch);
    expect(a.received()).toEqual([1, 2, 3, 4, 5]);
  });

  test('a gap wider than a batch is read in batches', async () => {
    const store = new FakeStore(0);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV });
    const n = REPLAY_BATCH * 2 + 5;
    store.store(n);
    ch.onEvent(event(n));
    await settled(ch);
    expect(a.received()).toEqual(range(1, n));
    expect(store.ranges).toBe(3);
  });

  test('duplicate events are dropped', async () => {
    const store = new FakeStore(0);
    const { render, rendered } = recordingRender();
    const ch = makeChannel(store, render);
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV });
    store.store(2);
    for (const s of [1, 1, 2, 1, 2, 2]) ch.onEvent(event(s));
    await settled(ch);
    expect(a.received()).toEqual([1, 2]);
    expect(rendered).toEqual([1, 2]);
  });

  test('subscribers sharing a plan get one render per message', async () => {
    const store = new FakeStore(0);
    const { render, rendered } = recordingRender();
    const ch = makeChannel(store, render);
    await ch.start();
    const subs = ['a', 'b', 'c'].map((id) => subscriber(id));
    for (const s of subs) await ch.attach(s.sink, { conversation: CONV });
    store.store(2);
    ch.onEvent(event(2));
    await settled(ch);
    for (const s of subs) expect(s.received()).toEqual([1, 2]);
    expect(rendered).toEqual([1, 2]);
  });
});

describe('MessageChannel replay with `after`', () => {
  test('replays what was missed, then continues live with no gap or duplicate', async () => {
    const store = new FakeStore(10);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV, after: 4 });
    expect(a.received()).toEqual(range(5, 10));
    store.store(11);
    ch.onEvent(event(11));
    ch.onEvent(event(10));
    await settled(ch);
    expect(a.received()).toEqual(range(5, 11));
  });

  test('live events arriving during the replay are neither lost nor duplicated', async () => {
    const store = new FakeStore(10);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const live = subscriber('live');
    await ch.attach(live.sink, { conversation: CONV });

    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    const late = subscriber('late');
    const attaching = ch.attach(late.sink, { conversation: CONV, after: 3 });
    // While its replay waits on the database, two messages are sent and published.
    store.store(12);
    ch.onEvent(event(11));
    ch.onEvent(event(12));
    open();
    store.gate = undefined;
    await attaching;
    store.store(13);
    ch.onEvent(event(13));
    await settled(ch);
    expect(late.received()).toEqual(range(4, 13));
    expect(live.received()).toEqual([11, 12, 13]);
  });

  test('a long replay is read in batches outside the queue, then joins live', async () => {
    const n = REPLAY_BATCH * 3 + 17;
    const store = new FakeStore(n);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV, after: 0 });
    expect(a.received()).toEqual(range(1, n));
    expect(store.ranges).toBe(4);
    store.store(n + 1);
    ch.onEvent(event(n + 1));
    await settled(ch);
    expect(a.received()).toEqual(range(1, n + 1));
  });

  test('subscribers replaying the same messages with one plan share the renders', async () => {
    const store = new FakeStore(20);
    const { render, rendered } = recordingRender();
    const ch = makeChannel(store, render);
    await ch.start();
    const a = subscriber('a');
    const b = subscriber('b');
    await ch.attach(a.sink, { conversation: CONV, after: 10 });
    await ch.attach(b.sink, { conversation: CONV, after: 5 });
    expect(a.received()).toEqual(range(11, 20));
    expect(b.received()).toEqual(range(6, 20));
    expect([...rendered].sort((x, y) => x - y)).toEqual(range(6, 20));
  });

  test('viewer-dependent subscribers are rendered for themselves during replay', async () => {
    const store = new FakeStore(3);
    const viewers: Array<string | undefined> = [];
    const render: Renderer = (_p, ev, viewer) => {
      viewers.push((viewer as { user: { id: string } } | undefined)?.user.id);
      return Promise.resolve(JSON.stringify({ data: (ev as MessagePayload).message.seq }));
    };
    const ch = makeChannel(store, render);
    await ch.start();
    const a = subscriber('alice', 'mine:alice', true);
    const b = subscriber('bob', 'mine:bob', true);
    await ch.attach(a.sink, { conversation: CONV, after: 1 });
    await ch.attach(b.sink, { conversation: CONV, after: 1 });
    expect(viewers).toEqual(['alice', 'alice', 'bob', 'bob']);
    expect(b.received()).toEqual([2, 3]);
  });

  test('`after` newer than the newest message is BAD_USER_INPUT', async () => {
    const store = new FakeStore(5);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const a = subscriber('a');
    await expect(ch.attach(a.sink, { conversation: CONV, after: 6 })).rejects.toMatchObject({
      message: 'after is newer than the newest message',
      extensions: { code: 'BAD_USER_INPUT', field: 'after' },
    });
    expect(ch.stats().sinks).toBe(0);
  });

  test('`after` equal to the newest message replays nothing and joins live', async () => {
    const store = new FakeStore(5);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV, after: 5 });
    expect(a.received()).toEqual([]);
    store.store(6);
    ch.onEvent(event(6));
    await settled(ch);
    expect(a.received()).toEqual([6]);
  });
});

describe('MessageChannel and database errors', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('a failed gap read is retried later without skipping anything', async () => {
    const store = new FakeStore(0);
    const errors: unknown[] = [];
    const ch = makeChannel(store, recordingRender().render, (e) => errors.push(e));
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV });

    store.store(4);
    store.failRanges = 2;
    ch.onEvent(event(4));
    await settled(ch);
    expect(errors).toHaveLength(1);
    expect(a.received()).toEqual([]);
    // More events during the outage are kept, not delivered past the gap.
    store.store(5);
    ch.onEvent(event(5));
    await settled(ch);
    expect(a.received()).toEqual([]);
    expect(errors).toHaveLength(2);

    // One retry is pending however many failures there were.
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(499);
    expect(a.received()).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    await settled(ch);
    expect(a.received()).toEqual([1, 2, 3, 4, 5]);
    expect(errors).toHaveLength(2);
    expect(jest.getTimerCount()).toBe(0);
  });

  test('retries continue while the database stays away', async () => {
    const store = new FakeStore(0);
    const errors: unknown[] = [];
    const ch = makeChannel(store, recordingRender().render, (e) => errors.push(e));
    await ch.start();
    const a = subscriber('a');
    await ch.attach(a.sink, { conversation: CONV });
    store.store(2);
    store.failRanges = 4;
    ch.onEvent(event(2));
    await settled(ch);
    for (let i = 0; i < 4; i++) await jest.advanceTimersByTimeAsync(500);
    await settled(ch);
    expect(errors).toHaveLength(4);
    expect(a.received()).toEqual([1, 2]);
  });

  test('closing the channel cancels the retry', async () => {
    const store = new FakeStore(0);
    const ch = makeChannel(store, recordingRender().render);
    await ch.start();
    const ended: unknown[] = [];
    const s = subscriber('a');
    const sink = makeSink(s.sink.subscriber, s.sink.plan, (e) => ended.push(e ?? 'ended'));
    await ch.attach(sink, { conversation: CONV });
    store.store(2);
    store.failRanges = 1;
    ch.onEvent(event(2));
    await settled(ch);
    expect(jest.getTimerCount()).toBe(1);
    ch.endAll();
    expect(jest.getTimerCount()).toBe(0);
    expect(ended).toEqual(['ended']);
    const rangesBefore = store.ranges;
    await jest.advanceTimersByTimeAsync(1000);
    expect(store.ranges).toBe(rangesBefore);
  });
});
