/**
 * `npm run bench -- --storm` (or `npm run bench:storm`): the reconnect storm.
 *
 * N WebSocket clients (raw graphql-ws protocol, one `ws` socket each, all in this process)
 * subscribe to the lobby; the first 2 × `--dms` of them also to a direct conversation with
 * each other. Messages flow at `--rate` per second (`--lobby-rate` of them to the lobby, the
 * rest to the DMs), sent over HTTP with a `clientId` and retried until acknowledged. After
 * `--warm` seconds the server process is SIGKILLed and restarted at once on the same port and
 * database. Every client reconnects as the web client does (jittered exponential backoff;
 * a refused upgrade waits its `Retry-After`, a refused subscribe its `retryAfterMs`) and
 * resubscribes with `after` = the last message it saw.
 *
 * Measured: time from the restart (server listening again) until every client resumed (each
 * of its subscriptions received a message stored after the restart, so its replay is done
 * and it is live again), messages lost / duplicated / out of order per subscription against
 * what the database holds (must all be 0), the new server's RSS (peak while the clients come
 * back), and its database commands and refusals from its start until every client resumed.
 *
 * Flags:
 *   --clients N        default 10000, or what `ulimit -n` allows (at least 5000 unless given)
 *   --dms 100          direct conversations (2 clients each, also subscribed to the lobby)
 *   --rate 200         messages per second in all
 *   --lobby-rate 2     of which to the lobby (each is delivered to every client)
 *   --warm 5           seconds of traffic before the kill
 *   --timeout 120      seconds to wait for every client to resume
 *   --env K=V,...      extra server environment (e.g. WS_UPGRADE_RATE=1000,REPLAY_CONCURRENCY=32)
 *   --out bench/results  where storm-latest.json goes
 */
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import WebSocket from 'ws';
import { startFerretDB, type EmbeddedDatabase } from '../src/db/embedded';
import { startServerProcess, type ServerProcess } from '../test/helpers/process';
import { freePort } from '../test/helpers/net';
import { rssBytes } from './stats';

/** The repository (this file runs from bench/ under jest and from dist/.bench/bench/ when built). */
const ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
const SEND = 'mutation StormSend($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const ADDED = 'subscription Storm($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id } }';
/** The cursor before a conversation's first message (sequence 0). */
const START = Buffer.from('m0').toString('base64url');
const SECRET = 'storm-secret-storm-secret-storm-secret-01';

export interface StormOptions {
  clients: number;
  dms: number;
  rate: number;
  lobbyRate: number;
  warmSeconds: number;
  timeoutSeconds: number;
  /** Extra server environment. */
  env: Record<string, string>;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

export interface StormResult {
  options: Omit<StormOptions, 'log'>;
  /** Seconds until every client was connected and subscribed, before the kill. */
  connectSeconds: number;
  /** Seconds from SIGKILL until the new server listened. */
  restartSeconds: number;
  /** Seconds from the restart until every client's connection was acknowledged again. */
  reconnectedSeconds: number;
  /** Seconds from the restart until a client's connection was acknowledged (p50, p99, max over clients). */
  reconnectSeconds: { p50: number; p99: number; max: number };
  /** Clients that resumed after the restart, of `clients`. */
  resumed: number;
  /** Seconds from the restart until every client resumed (p50, p99, max over clients). */
  resumeSeconds: { p50: number; p99: number; max: number };
  messages: { sent: number; stored: number; retried: number; unacknowledged: number };
  /** Over all subscriptions, against the database: must all be 0. */
  lost: number;
  duplicated: number;
  outOfOrder: number;
  delivered: number;
  /** Client side: upgrades refused (by status), subscribes refused, reconnect attempts. */
  clientSide: { upgradeRefusals: Record<string, number>; subscribeRefusals: number; reconnects: number };
  /** The new server from its start until every client resumed. */
  server: {
    peakRssMiB: number;
    dbCommands: Record<string, number>;
    dbCommandsTotal: number;
    upgradesRefused: { capacity: number; rate: number };
    replaysRefused: number;
    replayedMessages: number;
    replayPages: number;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (base: number) => base / 2 + Math.random() * (base / 2);

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** One identity: its session cookie and user id. */
interface Identity {
  cookie: string;
  id: string;
}

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

interface Shared {
  wsUrl: string;
  /** First sequence number stored after the restart, per conversation (set once known). */
  firstAfterRestart: Map<string, number>;
  restartedAt?: number;
  killedAt?: number;
  counters: StormResult['clientSide'];
  onResumed(client: StormClient): void;
  /** A connection acknowledged after the restart. */
  onReconnected(client: StormClient): void;
  stopped: boolean;
}

/** One simulated browser tab: a graphql-ws connection over a raw socket, reconnecting like the web client. */
class StormClient {
  private ws?: WebSocket;
  private retries = 0;
  private attempt = 0;
  connected = false;
  resumedAt?: number;

  constructor(
    readonly identity: Identity,
    readonly subs: SubState[],
    private readonly shared: Shared,
  ) {}

  connect(): void {
    if (this.shared.stopped) return;
    const attempt = ++this.attempt;
    const ws = new WebSocket(this.shared.wsUrl, 'graphql-transport-ws', { headers: { cookie: this.identity.cookie } });
    this.ws = ws;
    let done = false;
    const retry = (waitMs: number) => {
      if (done || attempt !== this.attempt) return;
      done = true;
      this.connected = false;
      this.shared.counters.reconnects++;
      setTimeout(() => this.connect(), waitMs);
    };
    const backoff = () => jitter(Math.min(500 * 2 ** this.retries++, 10000));
    ws.on('unexpected-response', (req, res) => {
      const status = String(res.statusCode);
      this.shared.counters.upgradeRefusals[status] = (this.shared.counters.upgradeRefusals[status] ?? 0) + 1;
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
      if (this.shared.killedAt !== undefined) this.shared.onReconnected(this);
      this.retries = 0;
      for (const sub of this.subs) this.subscribe(sub);
    } else if (frame.type === 'error' || frame.type === 'complete') {
      const sub = this.subs.find((s) => s.id === frame.id);
      if (!sub || this.shared.stopped) return;
      const err = Array.isArray(frame.payload) ? frame.payload[0] : undefined;
      const retryAfterMs = Number(err?.extensions?.retryAfterMs);
      if (err?.extensions?.code === 'RATE_LIMITED') this.shared.counters.subscribeRefusals++;
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
    const first = this.shared.firstAfterRestart.get(sub.conversation);
    if (first === undefined || sub.lastSeq < first) return;
    sub.resumedAt = Date.now();
    if (this.resumedAt === undefined && this.subs.every((s) => s.resumedAt !== undefined)) {
      this.resumedAt = sub.resumedAt;
      this.shared.onResumed(this);
    }
  }

  close(): void {
    this.shared.stopped = true;
    this.ws?.terminate();
  }
}

interface Frame {
  id?: string;
  type: string;
  payload?: any;
}

async function http(
  url: string,
  cookie: string | undefined,
  body: unknown,
): Promise<{ data?: any; errors?: unknown; cookie?: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const m = /anonymo\.sid=([^;]+)/.exec(res.headers.get('set-cookie') ?? '');
  const json = (await res.json()) as { data?: any; errors?: unknown };
  return { data: json.data, errors: json.errors, cookie: m ? `anonymo.sid=${m[1]}` : undefined };
}

async function createIdentities(url: string, count: number): Promise<Identity[]> {
  const out: Identity[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(20, count) }, async () => {
      while (next < count) {
        next++;
        const r = await http(url, undefined, { query: '{ me { id } }' });
        if (!r.cookie || !r.data?.me?.id) throw new Error(`could not create an identity: ${JSON.stringify(r)}`);
        out.push({ cookie: r.cookie, id: r.data.me.id as string });
      }
    }),
  );
  return out;
}

function metricValues(text: string, name: string): Array<{ labels: string; value: number }> {
  const out: Array<{ labels: string; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{.*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.push({ labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}

async function scrape(metricsPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  return res.text();
}

/** Runs one storm against a fresh server and database; resolves with the figures. */
export async function runStorm(options: StormOptions): Promise<StormResult> {
  const log = options.log ?? ((l: string) => console.log(l));
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anonymo-storm-'));
  let db: EmbeddedDatabase | undefined;
  let server: ServerProcess | undefined;
  const clients: StormClient[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    db = await startFerretDB({ dataDir, dbName: 'anonymo', ferretdbBin: path.join(ROOT, '.tools', 'bin', 'ferretdb') });
    const port = await freePort();
    const metricsPort = await freePort();
    const env: Record<string, string> = {
      MONGODB_URI: db.uri,
      SESSION_SECRET: SECRET,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      NODE_ENV: 'production',
      // Plain http on loopback: a Secure cookie would never be set.
      SESSION_COOKIE_SECURE: 'false',
      RATE_LIMITS: 'off',
      MAX_CONNECTIONS: '1000000',
      WS_MAX_CONNECTIONS_PER_IP: '1000000',
      WS_MAX_CONNECTIONS_PER_USER: '1000000',
      ...options.env,
    };
    server = await startServerProcess(env);
    const url = `http://127.0.0.1:${port}/graphql`;

    // Identities: one per DM participant, plus a pool the lobby-only clients share.
    const dmIdentities = await createIdentities(url, options.dms * 2);
    const pool = await createIdentities(url, Math.max(1, Math.min(200, options.clients - options.dms * 2)));
    log(`storm: ${dmIdentities.length + pool.length} identities`);

    const counters: StormResult['clientSide'] = { upgradeRefusals: {}, subscribeRefusals: 0, reconnects: 0 };
    const resumedTimes: number[] = [];
    const reconnected = new Set<StormClient>();
    let reconnectedSeconds = NaN;
    const reconnectTimes: number[] = [];
    let allResumed: () => void = () => undefined;
    const everyoneResumed = new Promise<void>((r) => (allResumed = r));
    const shared: Shared = {
      wsUrl: `ws://127.0.0.1:${port}/graphql`,
      firstAfterRestart: new Map(),
      counters,
      stopped: false,
      onReconnected: (c) => {
        if (reconnected.has(c)) return;
        reconnected.add(c);
        // From the restart; a client back before the harness read "listening" counts as 0.
        reconnectTimes.push(Math.max(0, Date.now() - (shared.restartedAt ?? Date.now())) / 1000);
        if (reconnected.size === clients.length) reconnectedSeconds = Math.max(...reconnectTimes);
      },
      onResumed: (c) => {
        resumedTimes.push((c.resumedAt! - shared.restartedAt!) / 1000);
        if (resumedTimes.length === clients.length) allResumed();
      },
    };
    const pairs: Array<[Identity, Identity]> = [];
    for (let p = 0; p < options.dms; p++) pairs.push([dmIdentities[2 * p], dmIdentities[2 * p + 1]]);
    const dmKey = (a: Identity, b: Identity) => (a.id < b.id ? `dm:${a.id}:${b.id}` : `dm:${b.id}:${a.id}`);
    for (let i = 0; i < options.clients; i++) {
      if (i < options.dms * 2) {
        const me = dmIdentities[i];
        const peer = dmIdentities[i ^ 1];
        clients.push(
          new StormClient(
            me,
            [new SubState('l', 'lobby', undefined), new SubState('d', dmKey(me, peer), peer.id)],
            shared,
          ),
        );
      } else clients.push(new StormClient(pool[i % pool.length], [new SubState('l', 'lobby', undefined)], shared));
    }
    const expectedSubs = clients.reduce((n, c) => n + c.subs.length, 0);

    // Connect everyone (through the same admission as a storm) and wait until all are subscribed.
    const connectStart = Date.now();
    let lastReport = connectStart;
    for (const c of clients) c.connect();
    for (;;) {
      const active = metricValues(await scrape(metricsPort), 'anonymo_subscriptions_active')[0]?.value ?? 0;
      if (active >= expectedSubs) break;
      if (Date.now() - connectStart > options.timeoutSeconds * 1000)
        throw new Error(`only ${active} of ${expectedSubs} subscriptions attached`);
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        log(`storm: ${active} of ${expectedSubs} subscriptions attached`);
      }
      await sleep(250);
    }
    const connectSeconds = (Date.now() - connectStart) / 1000;
    log(`storm: ${clients.length} clients, ${expectedSubs} subscriptions attached in ${connectSeconds.toFixed(1)} s`);

    // Messages at the configured rate, each retried with its clientId until acknowledged.
    const messages = { sent: 0, stored: 0, retried: 0, unacknowledged: 0 };
    const inFlight = new Set<Promise<void>>();
    let sending = true;
    /** Cleared a while after sending stopped: sends still unacknowledged then give up. */
    let retrying = true;
    const unacknowledged: string[] = [];
    let sendSerial = 0;
    const send = async (from: Identity, to: Identity | undefined, conversation: string) => {
      const issuedAt = Date.now();
      const clientId = `s${sendSerial++}`;
      let lastError = '';
      messages.sent++;
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) messages.retried++;
        if (!retrying && attempt > 0) {
          // Stopped and still not acknowledged: reported, not waited for forever.
          unacknowledged.push(lastError);
          return;
        }
        try {
          const r = await http(url, from.cookie, {
            query: SEND,
            variables: { input: { text: `storm ${clientId}`, clientId, to: to?.id } },
          });
          const id = r.data?.sendMessage?.id as string | undefined;
          lastError = id ? '' : JSON.stringify(r.errors ?? r.data).slice(0, 300);
          if (id) {
            messages.stored++;
            const seq = Number(id.slice(-12));
            // A send first issued after the restart is stored after it.
            if (shared.restartedAt !== undefined && issuedAt >= shared.restartedAt) {
              const known = shared.firstAfterRestart.get(conversation);
              if (known === undefined || seq < known) {
                shared.firstAfterRestart.set(conversation, seq);
                for (const c of clients)
                  for (const sub of c.subs) if (sub.conversation === conversation) c.checkResumed(sub);
              }
            }
            return;
          }
        } catch (err) {
          // server down or reset: not acknowledged, retry
          lastError = String(err);
        }
        await sleep(Math.min(1000, 100 * (attempt + 1)) * (0.5 + Math.random()));
      }
    };
    const sender = (async () => {
      const interval = 1000 / options.rate;
      let due = Date.now();
      while (sending) {
        due += interval;
        const toLobby = Math.random() < options.lobbyRate / options.rate || pairs.length === 0;
        let p: Promise<void>;
        if (toLobby)
          p = send(dmIdentities[Math.floor(Math.random() * dmIdentities.length)] ?? pool[0], undefined, 'lobby');
        else {
          const [a, b] = pairs[Math.floor(Math.random() * pairs.length)];
          const [from, to] = Math.random() < 0.5 ? [a, b] : [b, a];
          p = send(from, to, dmKey(a, b));
        }
        inFlight.add(p);
        void p.then(() => inFlight.delete(p));
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
    })();
    await sleep(options.warmSeconds * 1000);

    // The kill, and the restart on the same port and database.
    const killedAt = Date.now();
    shared.killedAt = killedAt;
    server.child.kill('SIGKILL');
    await server.exited;
    server = await startServerProcess(env);
    shared.restartedAt = Date.now();
    const restartSeconds = (shared.restartedAt - killedAt) / 1000;
    log(`storm: server killed and listening again after ${restartSeconds.toFixed(1)} s`);
    let peakRss = 0;
    const pid = server.child.pid!;
    sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, rssBytes(pid));
      } catch {
        // exited
      }
    }, 200);

    let timer: NodeJS.Timeout | undefined;
    const progress = setInterval(
      () =>
        log(
          `storm: ${reconnected.size} reconnected, ${resumedTimes.length} of ${clients.length} resumed ` +
            `${((Date.now() - shared.restartedAt!) / 1000).toFixed(0)} s after the restart`,
        ),
      5000,
    );
    const timedOut = await Promise.race([
      everyoneResumed.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), options.timeoutSeconds * 1000))),
    ]);
    clearTimeout(timer);
    clearInterval(progress);
    clearInterval(sampler);
    peakRss = Math.max(peakRss, rssBytes(pid));
    const metricsAtResume = await scrape(metricsPort);
    log(
      timedOut
        ? `storm: ${resumedTimes.length} of ${clients.length} clients resumed within ${options.timeoutSeconds} s`
        : `storm: every client resumed, the last ${quantile(resumedTimes, 1).toFixed(1)} s after the restart`,
    );

    // Stop sending, let every acknowledged message arrive, then compare with the database.
    sending = false;
    await sender;
    const giveUp = setTimeout(() => (retrying = false), 60000);
    await Promise.all(inFlight);
    clearTimeout(giveUp);
    if (unacknowledged.length)
      log(`storm: ${unacknowledged.length} sends never acknowledged, e.g. ${unacknowledged[0]}`);
    const mongo = await MongoClient.connect(db.uri);
    const heads = new Map<string, number>();
    try {
      const stored = await mongo
        .db()
        .collection<{ conversation: string; seq: number }>('messages')
        .find({}, { projection: { conversation: 1, seq: 1 } })
        .toArray();
      for (const m of stored) heads.set(m.conversation, Math.max(heads.get(m.conversation) ?? 0, m.seq));
      messages.stored = stored.length;
      messages.unacknowledged = unacknowledged.length;
    } finally {
      await mongo.close();
    }
    const caughtUp = () => clients.every((c) => c.subs.every((s) => s.lastSeq >= (heads.get(s.conversation) ?? 0)));
    const settleUntil = Date.now() + 30000;
    while (!caughtUp() && Date.now() < settleUntil) await sleep(100);

    let lost = 0;
    let duplicated = 0;
    let outOfOrder = 0;
    let delivered = 0;
    for (const c of clients) {
      for (const s of c.subs) {
        lost += s.missing.size + Math.max(0, (heads.get(s.conversation) ?? 0) - s.lastSeq);
        duplicated += s.duplicated;
        outOfOrder += s.outOfOrder;
        delivered += s.delivered;
      }
    }
    const dbCommands = Object.fromEntries(
      metricValues(metricsAtResume, 'anonymo_db_commands_total').map(({ labels, value }) => [
        /command="([^"]*)"/.exec(labels)?.[1] ?? labels,
        value,
      ]),
    );
    const one = (name: string, labels = '') =>
      metricValues(metricsAtResume, name).find((v) => v.labels === labels)?.value ?? 0;
    return {
      options: {
        clients: options.clients,
        dms: options.dms,
        rate: options.rate,
        lobbyRate: options.lobbyRate,
        warmSeconds: options.warmSeconds,
        timeoutSeconds: options.timeoutSeconds,
        env: options.env,
      },
      connectSeconds,
      restartSeconds,
      reconnectedSeconds,
      reconnectSeconds: {
        p50: quantile(reconnectTimes, 0.5),
        p99: quantile(reconnectTimes, 0.99),
        max: quantile(reconnectTimes, 1),
      },
      resumed: resumedTimes.length,
      resumeSeconds: {
        p50: quantile(resumedTimes, 0.5),
        p99: quantile(resumedTimes, 0.99),
        max: quantile(resumedTimes, 1),
      },
      messages,
      lost,
      duplicated,
      outOfOrder,
      delivered,
      clientSide: counters,
      server: {
        peakRssMiB: Math.round(peakRss / 2 ** 20),
        dbCommands,
        dbCommandsTotal: Object.values(dbCommands).reduce((a, b) => a + b, 0),
        upgradesRefused: {
          capacity: one('anonymo_websocket_upgrades_refused_total', '{reason="capacity"}'),
          rate: one('anonymo_websocket_upgrades_refused_total', '{reason="rate"}'),
        },
        replaysRefused: one('anonymo_replays_refused_total'),
        replayedMessages: one('anonymo_replayed_messages_total'),
        replayPages: one('anonymo_replay_pages_total'),
      },
    };
  } finally {
    if (sampler) clearInterval(sampler);
    for (const c of clients) c.close();
    if (server) {
      server.child.kill('SIGKILL');
      await server.exited;
      if (process.env.STORM_SERVER_LOG) writeFileSync(process.env.STORM_SERVER_LOG, server.logs.join('\n'));
    }
    await db?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function openFileLimit(): number {
  try {
    return Number(execFileSync('bash', ['-c', 'ulimit -n']).toString().trim()) || 1024;
  } catch {
    return 1024;
  }
}

function parseOptions(): StormOptions & { out: string } {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--storm'),
    options: {
      clients: { type: 'string' },
      dms: { type: 'string', default: '100' },
      rate: { type: 'string', default: '200' },
      'lobby-rate': { type: 'string', default: '2' },
      warm: { type: 'string', default: '5' },
      timeout: { type: 'string', default: '120' },
      env: { type: 'string', default: '' },
      out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
    },
  });
  const num = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: ${v} is not a number`);
    return n;
  };
  // This process holds one descriptor per client; the server (another process) as many.
  const limit = openFileLimit();
  const fits = limit - 500;
  let clients: number;
  if (values.clients !== undefined) {
    clients = num('clients', values.clients);
    if (clients > fits) throw new Error(`--clients ${clients}: ulimit -n is ${limit}; at most ${fits} fit`);
  } else {
    clients = Math.min(10000, fits);
    if (clients < 5000) throw new Error(`ulimit -n is ${limit}: raise it to at least 5500 (or pass --clients)`);
  }
  const dms = num('dms', values.dms);
  if (dms * 2 > clients) throw new Error(`--dms ${dms}: needs ${dms * 2} clients`);
  const env = Object.fromEntries(
    (values.env ?? '')
      .split(',')
      .filter(Boolean)
      .map((kv) => {
        const i = kv.indexOf('=');
        if (i < 1) throw new Error(`--env: ${kv} is not KEY=VALUE`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
  );
  return {
    clients,
    dms,
    rate: num('rate', values.rate),
    lobbyRate: num('lobby-rate', values['lobby-rate']),
    warmSeconds: num('warm', values.warm),
    timeoutSeconds: num('timeout', values.timeout),
    env,
    out: values.out,
  };
}

export function summary(r: StormResult): string {
  const commands = Object.entries(r.server.dbCommands)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return [
    '| clients | subscriptions lost / duplicated / out of order | resumed | resume p50 / p99 / max | restart | peak RSS | db commands (restart → all resumed) | upgrades refused (rate) | replayed messages |',
    '|---:|---|---:|---|---:|---:|---|---:|---:|',
    `| ${r.options.clients} | ${r.lost} / ${r.duplicated} / ${r.outOfOrder} | ${r.resumed}/${r.options.clients} | ` +
      `${r.resumeSeconds.p50.toFixed(1)} / ${r.resumeSeconds.p99.toFixed(1)} / ${r.resumeSeconds.max.toFixed(1)} s | ` +
      `${r.restartSeconds.toFixed(1)} s | ${r.server.peakRssMiB} MiB | ${r.server.dbCommandsTotal} (${commands}) | ` +
      `${r.server.upgradesRefused.rate} | ${r.server.replayedMessages} |`,
  ].join('\n');
}

export async function main(): Promise<void> {
  const opts = parseOptions();
  const build = execFileSync('bash', [path.join(ROOT, 'scripts', 'build-ferretdb.sh')], { stdio: 'inherit' });
  void build;
  const result = await runStorm(opts);
  mkdirSync(opts.out, { recursive: true });
  const file = path.join(opts.out, 'storm-latest.json');
  writeFileSync(file, JSON.stringify({ startedAt: new Date().toISOString(), ...result }, null, 2));
  console.log(`\n${JSON.stringify(result, null, 2)}\n\n${summary(result)}\n\nWrote ${path.relative(ROOT, file)}`);
  const ok = result.lost === 0 && result.duplicated === 0 && result.outOfOrder === 0 && result.resumed === opts.clients;
  console.log(
    `${ok ? 'OK' : 'FAILED'}: ${result.resumed}/${opts.clients} resumed, last after ${result.resumeSeconds.max.toFixed(1)} s ` +
      `(goal 30 s); lost ${result.lost}, duplicated ${result.duplicated}, out of order ${result.outOfOrder}`,
  );
  if (!ok) process.exitCode = 1;
}

if (require.main === module) {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
