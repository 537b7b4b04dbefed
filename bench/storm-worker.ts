/**
 * The clients of the reconnect storm (bench/storm.ts): simulated browser tabs, each a
 * graphql-ws connection over one raw `ws` socket that reconnects as the web client does and
 * checks every message it receives (lost, duplicated, out of order per subscription).
 *
 * A share of the clients runs in each worker process (a child of bench/storm.ts, as
 * bench/loadgen.ts is for the fan-out benchmark), so that 10,000 clients parsing every frame
 * do not make the harness itself the bottleneck. `StormWorker` is the same code in a child
 * (this file's entry point, over IPC) or in the harness's own process (`--workers 0`, used by
 * the fault suite's small storm, which runs the TypeScript sources under jest).
 */
import WebSocket from 'ws';

const ADDED = 'subscription Storm($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id } }';
/** The cursor before a conversation's first message (sequence 0). */
const START = Buffer.from('m0').toString('base64url');

export interface StormClientSpec {
  cookie: string;
  subs: Array<{ id: string; conversation: string; withId?: string }>;
}

export interface ClientCounters {
  /** Upgrades refused, by HTTP status. */
  upgradeRefusals: Record<string, number>;
  subscribeRefusals: number;
  reconnects: number;
}

export type ToStormWorker =
  | { type: 'start'; wsUrl: string; clients: StormClientSpec[] }
  /** The server was killed: acknowledgements from now on are reconnections. */
  | { type: 'killed' }
  /** The first message stored after the restart in `conversation` (or an earlier one than told before). */
  | { type: 'first'; conversation: string; seq: number }
  /** Compares every subscription with the newest sequence number stored per conversation. */
  | { type: 'check'; heads: Record<string, number> }
  | { type: 'close' };

export type FromStormWorker =
  | {
      type: 'progress';
      /** Date.now() of each client's first acknowledged connection after the kill, since the last progress. */
      reconnected: number[];
      /** Date.now() at which each client resumed (every subscription live again), since the last progress. */
      resumed: number[];
      counters: ClientCounters;
      /** Clients with an open, acknowledged connection now. */
      connected: number;
    }
  | {
      type: 'checked';
      caughtUp: boolean;
      lost: number;
      /** Messages not (yet) received by subscriptions of clients that never resumed. */
      behind: number;
      duplicated: number;
      outOfOrder: number;
      delivered: number;
      counters: ClientCounters;
    };

const jitter = (base: number) => base / 2 + Math.random() * (base / 2);

/** What one subscription has received, checked as it arrives. */
class SubState {
  lastSeq = 0;
  lastId: string | undefined;
  delivered = 0;
  duplicated = 0;
  outOfOrder = 0;
  /** Sequence numbers skipped over (arrived later: out of order; never: lost). */
  readonly missing = new Set<number>();
  resumedAt?: number;

  constructor(
    readonly id: string,
    readonly conversation: string,
    readonly withId: string | undefined,
  ) {}

  receive(messageId: string): void {
    const seq = Number(messageId.slice(-12));
    this.delivered++;
    if (seq > this.lastSeq) {
      for (let s = this.lastSeq + 1; s < seq; s++) this.missing.add(s);
      this.lastSeq = seq;
      this.lastId = messageId;
    } else if (this.missing.delete(seq)) this.outOfOrder++;
    else this.duplicated++;
  }
}

interface Frame {
  id?: string;
  type: string;
  payload?: any;
}

/** One simulated browser tab, reconnecting like the web client. */
class StormClient {
  private ws?: WebSocket;
  private retries = 0;
  private attempt = 0;
  connected = false;
  reconnected = false;
  resumedAt?: number;

  constructor(
    private readonly cookie: string,
    readonly subs: SubState[],
    private readonly worker: StormWorker,
  ) {}

  connect(): void {
    if (this.worker.stopped) return;
    const attempt = ++this.attempt;
    const ws = new WebSocket(this.worker.wsUrl, 'graphql-transport-ws', {
      headers: { cookie: this.cookie },
      perMessageDeflate: false,
    });
    this.ws = ws;
    let done = false;
    const counters = this.worker.counters;
    const retry = (waitMs: number) => {
      if (done || attempt !== this.attempt) return;
      done = true;
      if (this.connected) this.worker.connectedCount--;
      this.connected = false;
      counters.reconnects++;
      setTimeout(() => this.connect(), waitMs);
    };
    // As the web client: exponential from 0.5 s, capped at 10 s, jittered.
    const backoff = () => jitter(Math.min(500 * 2 ** this.retries++, 10000));
    ws.on('unexpected-response', (req, res) => {
      const status = String(res.statusCode);
      counters.upgradeRefusals[status] = (counters.upgradeRefusals[status] ?? 0) + 1;
      const after = Number(res.headers['retry-after']);
      res.resume();
      req.destroy();
      // The server said when: come back then, spread over the following second.
      retry(Number.isFinite(after) && after > 0 ? after * 1000 + Math.random() * 1000 : backoff());
    });
    ws.on('error', () => retry(backoff()));
    ws.on('close', () => retry(backoff()));
    ws.on('open', () => ws.send('{"type":"connection_init"}'));
    ws.on('message', (data: Buffer) => this.onMessage(JSON.parse(data.toString()) as Frame));
  }

  private subscribe(sub: SubState): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    const variables = { with: sub.withId, after: sub.lastId ?? START };
    this.ws.send(JSON.stringify({ id: sub.id, type: 'subscribe', payload: { query: ADDED, variables } }));
  }

  private onMessage(frame: Frame): void {
    if (frame.type === 'next') {
      const sub = this.subs.find((s) => s.id === frame.id);
      const id = frame.payload?.data?.messageAdded?.id;
      if (!sub || !id) return;
      sub.receive(id);
      this.checkResumed(sub);
    } else if (frame.type === 'connection_ack') {
      this.connected = true;
      this.worker.connectedCount++;
      if (this.worker.killed && !this.reconnected) {
        this.reconnected = true;
        this.worker.reconnectedAt.push(Date.now());
      }
      this.retries = 0;
      for (const sub of this.subs) this.subscribe(sub);
    } else if (frame.type === 'error' || frame.type === 'complete') {
      const sub = this.subs.find((s) => s.id === frame.id);
      if (!sub || this.worker.stopped) return;
      const err = Array.isArray(frame.payload) ? frame.payload[0] : undefined;
      const retryAfterMs = Number(err?.extensions?.retryAfterMs);
      if (err?.extensions?.code === 'RATE_LIMITED') this.worker.counters.subscribeRefusals++;
      const wait =
        Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? retryAfterMs * (1 + Math.random()) : jitter(1000);
      const ws = this.ws;
      setTimeout(() => ws === this.ws && this.subscribe(sub), wait);
    }
  }

  /**
   * Marks `sub` resumed once it holds a message stored after the restart (its replay is over
   * and it is live). Called on each message, and when the harness learns which message of the
   * conversation was the first stored after the restart (its frame may have come first).
   */
  checkResumed(sub: SubState): void {
    if (sub.resumedAt !== undefined) return;
    const first = this.worker.firstAfterRestart.get(sub.conversation);
    if (first === undefined || sub.lastSeq < first) return;
    sub.resumedAt = Date.now();
    if (this.resumedAt === undefined && this.subs.every((s) => s.resumedAt !== undefined)) {
      this.resumedAt = sub.resumedAt;
      this.worker.resumedAt.push(this.resumedAt);
    }
  }

  close(): void {
    this.ws?.terminate();
  }
}

/** A share of the storm's clients; `emit` sends to the harness. */
export class StormWorker {
  wsUrl = '';
  stopped = false;
  killed = false;
  connectedCount = 0;
  readonly firstAfterRestart = new Map<string, number>();
  readonly counters: ClientCounters = { upgradeRefusals: {}, subscribeRefusals: 0, reconnects: 0 };
  reconnectedAt: number[] = [];
  resumedAt: number[] = [];
  private clients: StormClient[] = [];
  /** The subscriptions of each conversation, with their client. */
  private readonly byConversation = new Map<string, Array<[StormClient, SubState]>>();
  private readonly flusher: NodeJS.Timeout;

  constructor(private readonly emit: (m: FromStormWorker) => void) {
    this.flusher = setInterval(() => this.flush(), 250);
  }

  private flush(): void {
    this.emit({
      type: 'progress',
      reconnected: this.reconnectedAt,
      resumed: this.resumedAt,
      counters: this.counters,
      connected: this.connectedCount,
    });
    this.reconnectedAt = [];
    this.resumedAt = [];
  }

  handle(m: ToStormWorker): void {
    if (m.type === 'start') {
      this.wsUrl = m.wsUrl;
      for (const spec of m.clients) {
        const subs = spec.subs.map((s) => new SubState(s.id, s.conversation, s.withId));
        const client = new StormClient(spec.cookie, subs, this);
        this.clients.push(client);
        for (const sub of subs) {
          let list = this.byConversation.get(sub.conversation);
          if (!list) this.byConversation.set(sub.conversation, (list = []));
          list.push([client, sub]);
        }
      }
      for (const c of this.clients) c.connect();
    } else if (m.type === 'killed') {
      this.killed = true;
    } else if (m.type === 'first') {
      const known = this.firstAfterRestart.get(m.conversation);
      if (known !== undefined && known <= m.seq) return;
      this.firstAfterRestart.set(m.conversation, m.seq);
      for (const [client, sub] of this.byConversation.get(m.conversation) ?? []) client.checkResumed(sub);
    } else if (m.type === 'check') {
      let caughtUp = true;
      let lost = 0;
      let duplicated = 0;
      let outOfOrder = 0;
      let delivered = 0;
      let behind = 0;
      for (const c of this.clients) {
        for (const s of c.subs) {
          const head = m.heads[s.conversation] ?? 0;
          if (s.lastSeq < head) caughtUp = false;
          // Skipped over: lost. Not yet received by a client that never came back: behind
          // (it has not resumed, which the run reports), not lost by the server.
          lost += s.missing.size;
          if (c.resumedAt !== undefined) lost += Math.max(0, head - s.lastSeq);
          else behind += Math.max(0, head - s.lastSeq);
          duplicated += s.duplicated;
          outOfOrder += s.outOfOrder;
          delivered += s.delivered;
        }
      }
      this.flush();
      this.emit({
        type: 'checked',
        caughtUp,
        lost,
        behind,
        duplicated,
        outOfOrder,
        delivered,
        counters: this.counters,
      });
    } else if (m.type === 'close') {
      this.stopped = true;
      clearInterval(this.flusher);
      for (const c of this.clients) c.close();
    }
  }
}

if (require.main === module) {
  const worker = new StormWorker((m) => process.send!(m));
  process.on('message', (m: ToStormWorker) => {
    worker.handle(m);
    if (m.type === 'close') setTimeout(() => process.exit(0), 100);
  });
  // The harness is gone (killed, crashed): so are we.
  process.on('disconnect', () => process.exit(0));
}
