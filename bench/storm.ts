/**
 * `npm run bench -- --storm` (or `npm run bench:storm`): the reconnect storm.
 *
 * N WebSocket clients (raw graphql-ws protocol, one `ws` socket each, spread over worker
 * processes: bench/storm-worker.ts) subscribe to the lobby; the first 2 × `--dms` of them also to a direct conversation with
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
 *   --profile DIR      node --cpu-prof the restarted server into DIR (written when the harness stops it)
 *   --workers N        client processes (default one per 2,500 clients)
 *   --out bench/results  where storm-latest.json and the servers' output (storm-server-{1,2}.log) go
 */
import { closeSync, existsSync, mkdtempSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { Agent as HttpAgent } from 'node:http';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { startFerretDB, type EmbeddedDatabase } from '../src/db/embedded';
import { ensureBuilt } from '../test/helpers/process';
import {
  StormWorker,
  type ClientCounters,
  type FromStormWorker,
  type StormClientSpec,
  type ToStormWorker,
} from './storm-worker';
import { freePort } from '../test/helpers/net';
import { rssBytes } from './stats';
import { graphqlPost } from './graphql-post';

/** The repository (this file runs from bench/ under jest and from dist/.bench/bench/ when built). */
const ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
const SEND = 'mutation StormSend($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
/** Every client resumed within this many seconds of the restart (issue 16). */
const GOAL_SECONDS = 30;
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
  /** `node --cpu-prof` the restarted server into this folder (written when the harness stops it). */
  profileDir?: string;
  /** Worker processes holding the clients (bench/storm-worker.ts); 0: in this process (default). */
  workers?: number;
  /** Where the servers' output goes (storm-server-1.log, -2.log); default a new temporary directory. */
  logDir?: string;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

/** How a server process of the storm ended. */
export interface ServerExit {
  run: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** False: it exited on its own (a crash), see its log. */
  killedByHarness: boolean;
  logFile: string;
}

export interface StormResult {
  options: Omit<StormOptions, 'log' | 'logDir'>;
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
  /** Messages the subscriptions of clients that never resumed have not received (not counted as lost). */
  behind: number;
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
    /**
     * CPU seconds the new server used from its first metrics answer after listening until every
     * client resumed (its start-up excluded), and that divided by the clients: what a
     * reconnecting client costs, the sends going on at the same time included.
     */
    cpuSeconds: number;
    cpuMsPerClient: number;
  };
  /** The servers' output (run 1: before the kill, run 2: after it). */
  serverLogs: string[];
  serverExits: ServerExit[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** A server process of the storm; its stdout and stderr go to `logFile` (no pipe it could block on). */
interface StormServer {
  child: ChildProcess;
  run: number;
  logFile: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set before the harness kills it: its exit is expected. */
  killedByHarness: boolean;
}

/** The last lines of a log file (what a crash leaves). */
function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Starts `node dist/main.js` on `port`, its output appended to `logFile`; resolves once it answers HTTP. */
async function startServer(
  env: Record<string, string>,
  port: number,
  run: number,
  logFile: string,
  nodeArgs: string[] = [],
): Promise<StormServer> {
  ensureBuilt();
  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  // Its own "listening" line, not an HTTP probe: at 10,000 clients the probe's connection
  // queues with the storm's in a full listen queue and was not answered within a minute.
  const deadline = Date.now() + 60000;
  while (listeningAt(logFile) === undefined) {
    if (gone) throw new Error(`server (run ${run}) exited while starting; ${logFile}:\n${tail(logFile)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server (run ${run}) did not listen within 60 s; see ${logFile}`);
    }
    await sleep(20);
  }
  return { child, run, logFile, exited, killedByHarness: false };
}

/**
 * The clients, spread over `count` worker processes (bench/storm-worker.ts), or run in this
 * process when `count` is 0 (under jest, where only the TypeScript sources exist).
 */
class StormWorkers {
  private readonly handles: Array<{ send: (m: ToStormWorker) => void; close: () => Promise<void> }> = [];
  private checkReplies: Array<Extract<FromStormWorker, { type: 'checked' }>> = [];
  private onChecked?: () => void;
  private readonly latestCounters: ClientCounters[] = [];
  private readonly connectedNow: number[] = [];

  constructor(
    count: number,
    private readonly onProgress: (reconnected: number[], resumed: number[]) => void,
  ) {
    const n = Math.max(1, count);
    for (let i = 0; i < n; i++) {
      const receive = (m: FromStormWorker) => this.receive(i, m);
      if (count === 0) {
        const worker = new StormWorker(receive);
        this.handles.push({ send: (m) => worker.handle(m), close: async () => worker.handle({ type: 'close' }) });
      } else {
        const child = fork(path.join(__dirname, 'storm-worker.js'), [], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        child.on('message', receive);
        const exited = new Promise((r) => child.once('exit', r));
        this.handles.push({
          send: (m) => child.connected && child.send(m),
          close: async () => {
            if (child.exitCode === null && child.signalCode === null) {
              if (child.connected) child.send({ type: 'close' } satisfies ToStormWorker);
              const t = setTimeout(() => child.kill('SIGKILL'), 5000);
              await exited;
              clearTimeout(t);
            }
          },
        });
      }
      this.latestCounters.push({ upgradeRefusals: {}, subscribeRefusals: 0, reconnects: 0 });
      this.connectedNow.push(0);
    }
  }

  get count(): number {
    return this.handles.length;
  }

  private receive(i: number, m: FromStormWorker): void {
    this.latestCounters[i] = m.counters;
    if (m.type === 'progress') {
      this.connectedNow[i] = m.connected;
      if (m.reconnected.length || m.resumed.length) this.onProgress(m.reconnected, m.resumed);
    } else {
      this.checkReplies.push(m);
      if (this.checkReplies.length === this.handles.length) this.onChecked?.();
    }
  }

  start(wsUrl: string, clients: StormClientSpec[]): void {
    this.handles.forEach((h, i) =>
      h.send({ type: 'start', wsUrl, clients: clients.filter((_, k) => k % this.handles.length === i) }),
    );
  }

  broadcast(m: ToStormWorker): void {
    for (const h of this.handles) h.send(m);
  }

  connected(): number {
    return this.connectedNow.reduce((a, b) => a + b, 0);
  }

  counters(): ClientCounters {
    const out: ClientCounters = { upgradeRefusals: {}, subscribeRefusals: 0, reconnects: 0 };
    for (const c of this.latestCounters) {
      out.subscribeRefusals += c.subscribeRefusals;
      out.reconnects += c.reconnects;
      for (const [k, v] of Object.entries(c.upgradeRefusals))
        out.upgradeRefusals[k] = (out.upgradeRefusals[k] ?? 0) + v;
    }
    return out;
  }

  /** Every subscription compared with `heads`, summed over the workers. */
  async check(heads: Record<string, number>) {
    this.checkReplies = [];
    const all = new Promise<void>((r) => (this.onChecked = r));
    this.broadcast({ type: 'check', heads });
    await all;
    const sum = (k: 'lost' | 'behind' | 'duplicated' | 'outOfOrder' | 'delivered') =>
      this.checkReplies.reduce((a, r) => a + r[k], 0);
    return {
      caughtUp: this.checkReplies.every((r) => r.caughtUp),
      lost: sum('lost'),
      behind: sum('behind'),
      duplicated: sum('duplicated'),
      outOfOrder: sum('outOfOrder'),
      delivered: sum('delivered'),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.close()));
  }
}

/**
 * The senders' connections: at most 64 at once, kept alive. Unbounded, a server slowed by the
 * storm had every send pile up as a new connection (over 12,000 open on each side within a
 * minute) until the harness ran out of descriptors; a queue here is what a fleet of browsers
 * with their own connection limits amounts to.
 */
const SENDERS = new HttpAgent({ keepAlive: true, maxSockets: 64 });
/**
 * The markers' own connections: one message to every conversation as soon as the server
 * listens again, so that "resumed" (a message stored after the restart received) does not
 * wait behind the senders' backlog when a slow server falls behind the rate.
 */
const MARKERS = new HttpAgent({ keepAlive: true, maxSockets: 16 });

/** One GraphQL POST; rejects on a network error or after `timeoutMs` without an answer. */
function http(
  url: string,
  cookie: string | undefined,
  body: unknown,
  agent = SENDERS,
  timeoutMs = 30000,
): Promise<{ data?: any; errors?: unknown; cookie?: string }> {
  return graphqlPost(url, body, { agent, cookie, timeoutMs });
}

/** When the server says it listens (its own log line's time): the restart's moment, whatever the harness's lag. */
function listeningAt(logFile: string): number | undefined {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('listening on')) continue;
    try {
      return (JSON.parse(line) as { time: number }).time;
    } catch {
      return undefined;
    }
  }
  return undefined;
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

async function scrape(metricsPort: number, timeoutMs = 30000): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  return res.text();
}

/** Runs one storm against a fresh server and database; resolves with the figures. */
export async function runStorm(options: StormOptions): Promise<StormResult> {
  const log = options.log ?? ((l: string) => console.log(l));
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anonymo-storm-'));
  const logDir = options.logDir ?? mkdtempSync(path.join(tmpdir(), 'anonymo-storm-logs-'));
  mkdirSync(logDir, { recursive: true });
  let db: EmbeddedDatabase | undefined;
  let server: StormServer | undefined;
  const servers: StormServer[] = [];
  const exits: ServerExit[] = [];
  let workers: StormWorkers | undefined;
  let sampler: NodeJS.Timeout | undefined;
  /** Rejects when a server exits without the harness killing it: the run stops with its output. */
  let serverDied: (err: Error) => void = () => undefined;
  const died = new Promise<never>((_, reject) => (serverDied = reject));
  died.catch(() => undefined);
  const watch = (s: StormServer) => {
    servers.push(s);
    void s.exited.then(({ code, signal }) => {
      if (s.killedByHarness) return;
      const why = `server (run ${s.run}) exited on its own: code ${code}, signal ${signal}; output in ${s.logFile}`;
      log(`storm: ${why}\n${tail(s.logFile)}`);
      serverDied(new Error(why));
    });
  };
  // Interrupted (Ctrl-C): the servers and the database go too, not left behind as orphans.
  const onSignal = () => {
    for (const s of servers) s.child.kill('SIGKILL');
    db?.process?.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
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
    server = await startServer(env, port, 1, path.join(logDir, 'storm-server-1.log'));
    watch(server);
    const url = `http://127.0.0.1:${port}/graphql`;

    // Identities: one per DM participant, plus a pool the lobby-only clients share.
    const dmIdentities = await createIdentities(url, options.dms * 2);
    const pool = await createIdentities(url, Math.max(1, Math.min(200, options.clients - options.dms * 2)));
    log(`storm: ${dmIdentities.length + pool.length} identities; server output in ${logDir}`);

    const restarted: { at?: number } = {};
    const resumedEpochs: number[] = [];
    const reconnectEpochs: number[] = [];
    let allResumed: () => void = () => undefined;
    const everyoneResumed = new Promise<void>((r) => (allResumed = r));
    workers = new StormWorkers(options.workers ?? 0, (reconnected, resumed) => {
      reconnectEpochs.push(...reconnected);
      resumedEpochs.push(...resumed);
      if (resumedEpochs.length === options.clients) allResumed();
    });
    const pairs: Array<[Identity, Identity]> = [];
    for (let p = 0; p < options.dms; p++) pairs.push([dmIdentities[2 * p], dmIdentities[2 * p + 1]]);
    const dmKey = (a: Identity, b: Identity) => (a.id < b.id ? `dm:${a.id}:${b.id}` : `dm:${b.id}:${a.id}`);
    const specs: StormClientSpec[] = [];
    for (let i = 0; i < options.clients; i++) {
      if (i < options.dms * 2) {
        const me = dmIdentities[i];
        const peer = dmIdentities[i ^ 1];
        specs.push({
          cookie: me.cookie,
          subs: [
            { id: 'l', conversation: 'lobby' },
            { id: 'd', conversation: dmKey(me, peer), withId: peer.id },
          ],
        });
      } else specs.push({ cookie: pool[i % pool.length].cookie, subs: [{ id: 'l', conversation: 'lobby' }] });
    }
    const expectedSubs = specs.reduce((n, c) => n + c.subs.length, 0);

    // Connect everyone (through the same admission as a storm) and wait until all are subscribed.
    const connectStart = Date.now();
    let lastReport = connectStart;
    workers.start(`ws://127.0.0.1:${port}/graphql`, specs);
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
    log(
      `storm: ${options.clients} clients (${workers.count} worker${workers.count === 1 ? '' : 's'}), ` +
        `${expectedSubs} subscriptions attached in ${connectSeconds.toFixed(1)} s`,
    );

    // Messages at the configured rate, each retried with its clientId until acknowledged.
    const messages = { sent: 0, stored: 0, retried: 0, unacknowledged: 0 };
    const firstAfterRestart = new Map<string, number>();
    const inFlight = new Set<Promise<void>>();
    let sending = true;
    /** Cleared a while after sending stopped: sends still unacknowledged then give up. */
    let retrying = true;
    const unacknowledged: string[] = [];
    let sendSerial = 0;
    const send = async (from: Identity, to: Identity | undefined, conversation: string, agent = SENDERS) => {
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
          const r = await http(
            url,
            from.cookie,
            { query: SEND, variables: { input: { text: `storm ${clientId}`, clientId, to: to?.id } } },
            agent,
          );
          const id = r.data?.sendMessage?.id as string | undefined;
          lastError = id ? '' : JSON.stringify(r.errors ?? r.data).slice(0, 300);
          if (id) {
            messages.stored++;
            const seq = Number(id.slice(-12));
            // A send first issued after the restart is stored after it.
            if (restarted.at !== undefined && issuedAt >= restarted.at) {
              const known = firstAfterRestart.get(conversation);
              if (known === undefined || seq < known) {
                firstAfterRestart.set(conversation, seq);
                workers?.broadcast({ type: 'first', conversation, seq });
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
    workers.broadcast({ type: 'killed' });
    server.killedByHarness = true;
    server.child.kill('SIGKILL');
    await server.exited;
    server = await startServer(
      env,
      port,
      2,
      path.join(logDir, 'storm-server-2.log'),
      options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(options.profileDir)}`] : [],
    );
    watch(server);
    restarted.at = listeningAt(server.logFile) ?? Date.now();
    const restartedAt = restarted.at;
    const restartSeconds = (restartedAt - killedAt) / 1000;
    log(`storm: server killed and listening again after ${restartSeconds.toFixed(1)} s`);
    const markers = [
      send(dmIdentities[0] ?? pool[0], undefined, 'lobby', MARKERS),
      ...pairs.map(([a, b]) => send(a, b, dmKey(a, b), MARKERS)),
    ];
    for (const p of markers) {
      inFlight.add(p);
      void p.then(() => inFlight.delete(p));
    }
    // The CPU the new server spent starting (module loading, connecting) is not the storm's.
    const cpuAtRestart = await scrape(metricsPort).then(
      (text) => metricValues(text, 'process_cpu_seconds_total')[0]?.value ?? 0,
      () => 0,
    );
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
    const progress = setInterval(() => void progressLine(), 5000);
    const progressLine = async () => {
      const at = `${((Date.now() - restartedAt) / 1000).toFixed(0)} s after the restart`;
      let state = 'metrics unanswered';
      try {
        const text = await scrape(metricsPort, 2000);
        const v = (name: string, labels = '') => metricValues(text, name).find((x) => x.labels === labels)?.value ?? 0;
        state =
          `${v('anonymo_websocket_connections')} sockets, ${v('anonymo_subscriptions_active')} subscriptions, ` +
          `replays ${v('anonymo_replays', '{state="running"}')} running / ${v('anonymo_replays', '{state="waiting"}')} waiting, ` +
          `${Math.round(v('process_resident_memory_bytes') / 2 ** 20)} MiB, ` +
          `loop lag p99 ${Math.round(v('nodejs_eventloop_lag_p99_seconds') * 1000)} ms, ` +
          `cpu ${v('process_cpu_seconds_total').toFixed(1)} s`;
      } catch {
        // stalled or gone: said so
      }
      log(
        `storm: ${reconnectEpochs.length} reconnected (${workers?.connected() ?? 0} connected), ` +
          `${resumedEpochs.length} of ${options.clients} resumed ${at}; server: ${state}`,
      );
    };
    const timedOut = await Promise.race([
      everyoneResumed.then(() => false),
      died,
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), options.timeoutSeconds * 1000))),
    ]).finally(() => {
      clearTimeout(timer);
      clearInterval(progress);
      clearInterval(sampler);
    });
    peakRss = Math.max(peakRss, rssBytes(pid));
    const metricsAtResume = await scrape(metricsPort);
    const resumedTimes = resumedEpochs.map((t) => (t - restartedAt) / 1000);
    const reconnectTimes = reconnectEpochs.map((t) => Math.max(0, t - restartedAt) / 1000);
    const reconnectedSeconds = reconnectTimes.length === options.clients ? Math.max(...reconnectTimes) : NaN;
    log(
      timedOut
        ? `storm: ${resumedTimes.length} of ${options.clients} clients resumed within ${options.timeoutSeconds} s`
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
    const heads: Record<string, number> = {};
    try {
      const stored = await mongo
        .db()
        .collection<{ conversation: string; seq: number }>('messages')
        .find({}, { projection: { conversation: 1, seq: 1 } })
        .toArray();
      for (const m of stored) heads[m.conversation] = Math.max(heads[m.conversation] ?? 0, m.seq);
      messages.stored = stored.length;
      messages.unacknowledged = unacknowledged.length;
    } finally {
      await mongo.close();
    }
    const settleUntil = Date.now() + 30000;
    let checked = await workers.check(heads);
    while (!checked.caughtUp && Date.now() < settleUntil) {
      await sleep(250);
      checked = await workers.check(heads);
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
        workers: workers.count,
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
      lost: checked.lost,
      behind: checked.behind,
      duplicated: checked.duplicated,
      outOfOrder: checked.outOfOrder,
      delivered: checked.delivered,
      clientSide: workers.counters(),
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
        cpuSeconds: one('process_cpu_seconds_total') - cpuAtRestart,
        cpuMsPerClient: ((one('process_cpu_seconds_total') - cpuAtRestart) * 1000) / options.clients,
      },
      serverLogs: servers.map((s) => s.logFile),
      // Filled in by `finally` below, before the caller sees the result.
      serverExits: exits,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (sampler) clearInterval(sampler);
    await workers?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      // Stopped as an operator would (SIGTERM, then SIGKILL after 10 s), so that a server run
      // with `--profile DIR` (node --cpu-prof) writes its profile on the way out.
      server.killedByHarness = true;
      const child = server.child;
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      void server.exited.then(() => clearTimeout(force));
    }
    for (const s of servers) {
      const { code, signal } = await s.exited;
      exits.push({ run: s.run, code, signal, killedByHarness: s.killedByHarness, logFile: s.logFile });
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
      profile: { type: 'string' },
      workers: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
    },
  });
  const num = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: ${v} is not a number`);
    return n;
  };
  // The workers hold one descriptor per client; the server (another process) as many.
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
    ...(values.profile ? { profileDir: values.profile } : {}),
    // About 2,500 clients a worker: one process parsing every frame of 10,000 fell behind.
    workers: values.workers !== undefined ? num('workers', values.workers) : Math.max(1, Math.ceil(clients / 2500)),
    out: values.out,
    logDir: values.out,
  };
}

export function summary(r: StormResult): string {
  const commands = Object.entries(r.server.dbCommands)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return [
    '| clients | subscriptions lost / duplicated / out of order | resumed | resume p50 / p99 / max | restart | peak RSS | db commands (restart → all resumed) | upgrades refused (rate) | replayed messages | server CPU (ms per client) |',
    '|---:|---|---:|---|---:|---:|---|---:|---:|---:|',
    `| ${r.options.clients} | ${r.lost} / ${r.duplicated} / ${r.outOfOrder} | ${r.resumed}/${r.options.clients} | ` +
      `${r.resumeSeconds.p50.toFixed(1)} / ${r.resumeSeconds.p99.toFixed(1)} / ${r.resumeSeconds.max.toFixed(1)} s | ` +
      `${r.restartSeconds.toFixed(1)} s | ${r.server.peakRssMiB} MiB | ${r.server.dbCommandsTotal} (${commands}) | ` +
      `${r.server.upgradesRefused.rate} | ${r.server.replayedMessages} | ` +
      `${r.server.cpuSeconds.toFixed(1)} s (${r.server.cpuMsPerClient.toFixed(2)}) |`,
  ].join('\n');
}

export async function main(): Promise<void> {
  const opts = parseOptions();
  const build = execFileSync('bash', [path.join(ROOT, 'scripts', 'build-ferretdb.sh')], { stdio: 'inherit' });
  void build;
  mkdirSync(opts.out, { recursive: true });
  const result = await runStorm(opts);
  mkdirSync(opts.out, { recursive: true });
  const file = path.join(opts.out, 'storm-latest.json');
  writeFileSync(file, JSON.stringify({ startedAt: new Date().toISOString(), ...result }, null, 2));
  console.log(`\n${JSON.stringify(result, null, 2)}\n\n${summary(result)}\n\nWrote ${path.relative(ROOT, file)}`);
  for (const e of result.serverExits.filter((x) => !x.killedByHarness))
    console.log(`server run ${e.run} exited on its own (code ${e.code}, signal ${e.signal}): ${e.logFile}`);
  const ok =
    result.lost === 0 &&
    result.duplicated === 0 &&
    result.outOfOrder === 0 &&
    result.resumed === opts.clients &&
    result.resumeSeconds.max <= GOAL_SECONDS;
  console.log(
    `${ok ? 'OK' : 'FAILED'}: ${result.resumed}/${opts.clients} resumed, last after ${result.resumeSeconds.max.toFixed(1)} s ` +
      `(goal ${GOAL_SECONDS} s); lost ${result.lost}, duplicated ${result.duplicated}, out of order ${result.outOfOrder}` +
      (result.behind ? `; ${result.behind} messages not received by the clients that never resumed` : ''),
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
