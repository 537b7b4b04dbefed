/**
 * `npm run bench`: lobby fan-out and history benchmark.
 *
 * For each subscriber count and mode it starts a server process (`dist/main.js`, or the
 * bare `ws` broadcast of bench/raw-server.ts as the ceiling), opens the subscribers from
 * load-generator worker processes (bench/loadgen.ts), and measures:
 *  - idle server RSS per subscribed connection,
 *  - delivery latency p50/p99 from the sendMessage call to every subscriber at fixed rates,
 *  - deliveries/s at saturation (a closed loop keeping `--window` messages in flight) and
 *    the server's CPU time per delivery;
 * then `messages(last: 50)` latency with each `--history` size stored, and FerretDB's query
 * plan for the lookup it issues. Prints a table with ratios to the raw baseline and writes
 * bench/results/latest.json and latest.svg.
 *
 * Flags (the defaults take about 80 s on 2 cores):
 *   --subscribers 2000        comma list, up to the open-file limit (20000 here)
 *   --rates 2                 messages/s for the latency phases
 *   --modes raw,per-subscriber,grouped
 *   --history 10000,100000    stored messages for the history phase (1000000 takes ~1 min to seed); 0 skips
 *   --history-requests 200    sequential messages(last: 50) requests measured per size
 *   --duration 3              seconds per latency or saturation phase
 *   --workers 2               load-generator processes
 *   --identities 50           sessions shared by the subscribers
 *   --window 8                messages in flight during the saturation phase
 *   --repeat 1                runs of each scenario (interleaved); each figure is the best of them
 *   --out bench/results       where latest.json / latest.svg go
 *   --profile DIR             run the Anonymo servers with `node --cpu-prof` into DIR
 *   --server FILE             the server to start (default dist/main.js; e.g. an older build to compare)
 *   --rooms 1000              rooms for the rooms phase (0 skips): each with --room-members
 *   --room-members 10         subscribers per room (`messageAdded(room:)`), messages sent to random rooms
 */
import { spawn, spawnSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { startFerretDB, type EmbeddedDatabase } from '../src/db/embedded';
import { renderChart } from './chart';
import type { FromWorker, ToWorker } from './loadgen';
import { cpuSeconds, nowMs, quantile, rssBytes, sleep } from './stats';
import { freePort } from '../test/helpers/net';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BUILT = path.join(ROOT, 'dist', '.bench', 'bench');
const MODES = ['raw', 'per-subscriber', 'grouped'] as const;
type Mode = (typeof MODES)[number];

const SUBSCRIPTION = 'subscription Lobby { messageAdded { id text createdAt sender { id username avatarUrl } } }';
const SEND = 'mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const HISTORY =
  'query History { messages(last: 50) { edges { cursor node { id text createdAt sender { id username } } } pageInfo { hasPreviousPage } } }';

export interface RateResult {
  rate: number;
  messages: number;
  expected: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}
export interface Scenario {
  /** 1, 5 and 15 minute load averages of the machine when the scenario ended (other work skews it). */
  loadAvg: number[];
  subscribers: number;
  mode: Mode;
  connectSeconds: number;
  failedConnections: number;
  /** Idle RSS growth per subscribed connection, over the second half of the connections. */
  rssPerConnectionKiB: number;
  /** Idle RSS growth over all connections divided by their number (includes one-off heap growth). */
  rssPerConnectionAllKiB: number;
  rates: RateResult[];
  /** With --repeat: every run; the figures above are the best of them. */
  runs?: Scenario[];
  saturation?: {
    messages: number;
    seconds: number;
    deliveriesPerSec: number;
    serverCores: number;
    loadgenCores: number;
    cpuUsPerDelivery: number;
  };
  notes: string[];
}
export interface HistoryResult {
  stored: number;
  seedSeconds: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
}
export interface RoomsResult {
  rooms: number;
  membersPerRoom: number;
  subscribers: number;
  createSeconds: number;
  /** Idle RSS growth with every room's subscribers attached, per room (includes its sockets). */
  rssPerRoomKiB: number;
  /** The same minus the lobby scenario's RSS per connection × members: what a room itself costs. */
  rssPerRoomExclConnectionsKiB?: number;
  rate: RateResult;
  saturation: { messages: number; seconds: number; deliveriesPerSec: number; serverCores: number };
  notes: string[];
}
export interface BenchResult {
  startedAt: string;
  machine: {
    cpus: number;
    cpuModel: string;
    memGiB: number;
    node: string;
    loadAvgAtStart: number[];
    openFileLimit: number;
  };
  options: Options;
  scenarios: Scenario[];
  history: HistoryResult[];
  explain?: { pointLookup: unknown; rangeScan: unknown };
  rooms?: RoomsResult;
}

interface Options {
  subscribers: number[];
  rates: number[];
  modes: Mode[];
  history: number[];
  duration: number;
  workers: number;
  identities: number;
  window: number;
  out: string;
  profile?: string;
  server: string;
  repeat: number;
  historyRequests: number;
  rooms: number;
  roomMembers: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      subscribers: { type: 'string', default: '2000' },
      rates: { type: 'string', default: '2' },
      modes: { type: 'string', default: MODES.join(',') },
      history: { type: 'string', default: '10000,100000' },
      duration: { type: 'string', default: '3' },
      workers: { type: 'string', default: '2' },
      identities: { type: 'string', default: '50' },
      window: { type: 'string', default: '8' },
      out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
      profile: { type: 'string' },
      server: { type: 'string', default: path.join(ROOT, 'dist', 'main.js') },
      repeat: { type: 'string', default: '1' },
      'history-requests': { type: 'string', default: '200' },
      rooms: { type: 'string', default: '1000' },
      'room-members': { type: 'string', default: '10' },
    },
  });
  const nums = (s: string, name: string) =>
    s
      .split(',')
      .filter(Boolean)
      .map((v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: ${v} is not a number`);
        return n;
      });
  const modes = values.modes.split(',').filter(Boolean) as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`--modes: unknown mode ${m} (${MODES.join(', ')})`);
  const subscribers = nums(values.subscribers, 'subscribers');
  if (subscribers.some((n) => n < 1 || n > 20000)) throw new Error('--subscribers: 1..20000');
  return {
    subscribers,
    rates: nums(values.rates, 'rates').filter((r) => r > 0),
    modes,
    history: nums(values.history, 'history')
      .filter((h) => h > 0)
      .sort((a, b) => a - b),
    duration: nums(values.duration, 'duration')[0],
    workers: Math.max(1, Math.floor(nums(values.workers, 'workers')[0])),
    identities: Math.max(1, Math.floor(nums(values.identities, 'identities')[0])),
    window: Math.max(1, Math.floor(nums(values.window, 'window')[0])),
    out: path.resolve(values.out),
    profile: values.profile ? path.resolve(values.profile) : undefined,
    server: path.resolve(values.server),
    repeat: Math.max(1, Math.floor(nums(values.repeat, 'repeat')[0])),
    historyRequests: Math.max(1, Math.floor(nums(values['history-requests'], 'history-requests')[0])),
    rooms: Math.floor(nums(values.rooms, 'rooms')[0]),
    roomMembers: Math.max(1, Math.floor(nums(values['room-members'], 'room-members')[0])),
  };
}

function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : Infinity;
}

/** A server under test: our dist/main.js or the raw ws broadcast. */
interface Target {
  mode: Mode;
  pid: number;
  http: string;
  ws: string;
  child: ChildProcess;
  /** The server's database (not for raw). */
  dbName?: string;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 12000);
  await exited;
  clearTimeout(t);
}

async function startTarget(
  mode: Mode,
  mongoBase: string,
  subscribers: number,
  server: string,
  profile?: string,
  extraEnv: Record<string, string> = {},
): Promise<Target> {
  if (mode === 'raw') {
    const child = spawn(process.execPath, [...GC_ARGS, path.join(BUILT, 'raw-server.js')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (l) => {
        const m = /^READY (\d+)/.exec(l);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (c) => reject(new Error(`raw server exited with ${c}`)));
    });
    return {
      mode,
      pid: child.pid!,
      http: `http://127.0.0.1:${port}/send`,
      ws: `ws://127.0.0.1:${port}/graphql`,
      child,
      stop: () => stopChild(child),
    };
  }
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anonymo-bench-'));
  const dbName = `bench_${mode.replace(/\W/g, '')}_${randomBytes(3).toString('hex')}`;
  const nodeArgs = profile
    ? ['--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${mode}-${subscribers}-${Date.now()}.cpuprofile`]
    : [];
  const child = spawn(process.execPath, [...GC_ARGS, ...nodeArgs, server], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      SESSION_SECRET: randomBytes(24).toString('hex'),
      SESSION_COOKIE_SECURE: 'false',
      PORT: String(port),
      HOST: '127.0.0.1',
      MONGODB_URI: `${mongoBase}${dbName}`,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      RATE_LIMITS: 'off',
      MAX_CONNECTIONS: String(subscribers + 1000),
      FANOUT: mode,
      REDIS_URL: '',
      ...extraEnv,
    },
  });
  const http = `http://127.0.0.1:${port}/graphql`;
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('server did not become ready');
    await sleep(100);
  }
  return {
    mode,
    pid: child.pid!,
    http,
    ws: `ws://127.0.0.1:${port}/graphql`,
    child,
    dbName,
    stop: async () => {
      await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates `n` anonymous identities over HTTP; returns their cookies. */
export async function identities(url: string, n: number): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    const m = /anonymo\.sid=([^;]+)/.exec(r.headers.get('set-cookie') ?? '');
    if (!r.ok || !m) throw new Error(`could not create an identity: ${r.status} ${await r.text()}`);
    await r.text();
    cookies.push(`anonymo.sid=${m[1]}`);
  }
  return cookies;
}

export class Workers {
  private readonly procs: ChildProcess[] = [];
  private readonly waiting = new Map<number, { left: number; resolve: () => void }>();
  private readonly early = new Map<number, number>();
  active = 0;
  /** Sockets asked of each worker so far. */
  private readonly opened: number[];

  constructor(count: number) {
    this.opened = new Array<number>(count).fill(0);
    for (let i = 0; i < count; i++) {
      const p = fork(path.join(BUILT, 'loadgen.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      p.on('message', (m: FromWorker) => {
        if (m.type === 'done') this.onDone(m.k);
      });
      this.procs.push(p);
    }
  }

  private onDone(k: number): void {
    const w = this.waiting.get(k);
    if (!w) {
      this.early.set(k, (this.early.get(k) ?? 0) + 1);
      return;
    }
    if (--w.left === 0) {
      this.waiting.delete(k);
      w.resolve();
    }
  }

  /** Resolves when message `k` reached every socket of every worker. */
  delivered(k: number): Promise<void> {
    return new Promise((resolve) => {
      const left = this.active - (this.early.get(k) ?? 0);
      this.early.delete(k);
      if (left <= 0) return resolve();
      this.waiting.set(k, { left, resolve });
    });
  }

  private ask<T extends FromWorker['type']>(
    p: ChildProcess,
    msg: ToWorker,
    reply: T,
  ): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve) => {
      const on = (m: FromWorker) => {
        if (m.type !== reply) return;
        p.off('message', on);
        resolve(m as Extract<FromWorker, { type: T }>);
      };
      p.on('message', on);
      p.send(msg);
    });
  }

  async connect(
    url: string,
    protocol: 'graphql' | 'raw',
    cookies: string[],
    total: number,
    query = SUBSCRIPTION,
    variables?: Array<Record<string, unknown>>,
  ): Promise<{ open: number; failed: number; firstError?: string }> {
    const shares = this.procs.map(
      (_, i) => Math.floor(total / this.procs.length) + (i < total % this.procs.length ? 1 : 0),
    );
    shares.forEach((n, i) => (this.opened[i] += n));
    this.active = this.opened.filter((n) => n > 0).length;
    const replies = await Promise.all(
      this.procs.map((p, i) =>
        shares[i] > 0
          ? this.ask(
              p,
              { type: 'connect', url, protocol, cookies, count: shares[i], query, variables, concurrency: 50 },
              'connected',
            )
          : Promise.resolve({
              type: 'connected' as const,
              open: 0,
              failed: 0,
              firstError: undefined as string | undefined,
            }),
      ),
    );
    // Workers report their cumulative count of open sockets.
    return {
      open: replies.reduce((a, r) => a + r.open, 0),
      failed: replies.reduce((a, r) => a + r.failed, 0),
      firstError: replies.find((r) => r.firstError)?.firstError,
    };
  }

  /** CPU seconds the load generators have used so far. */
  cpuSeconds(): number {
    return this.procs.reduce((a, p) => a + (p.pid ? cpuSeconds(p.pid) : 0), 0);
  }

  record(on: boolean): void {
    for (const p of this.procs) p.send({ type: 'record', on } satisfies ToWorker);
  }

  async report(): Promise<{ latencies: number[]; delivered: number; unexpected: number; closed: number }> {
    const rs = await Promise.all(this.procs.map((p) => this.ask(p, { type: 'report' }, 'report')));
    return {
      latencies: rs.flatMap((r) => r.latencies),
      delivered: rs.reduce((a, r) => a + r.delivered, 0),
      unexpected: rs.reduce((a, r) => a + r.unexpected, 0),
      closed: rs.reduce((a, r) => a + r.closed, 0),
    };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.procs.map((p) => {
        const exited = new Promise((r) => p.once('exit', r));
        p.send({ type: 'close' } satisfies ToWorker);
        return exited;
      }),
    );
  }
}

/** Sends lobby message `k` stamped with its send time; resolves when the server acknowledged it. */
function sender(target: Target, cookie: string | undefined): (k: number) => Promise<void> {
  return async (k) => {
    const text = `b:${k}:${nowMs().toFixed(3)}`;
    const body =
      target.mode === 'raw'
        ? JSON.stringify({ text })
        : JSON.stringify({ query: SEND, variables: { input: { text } } });
    const r = await fetch(target.http, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body,
    });
    const json = (await r.json()) as { errors?: unknown[] };
    if (!r.ok || json.errors) throw new Error(`send failed: ${r.status} ${JSON.stringify(json.errors)}`);
  };
}

/** Quiet time before reading a server's idle RSS. */
const IDLE_MS = 1000;
const GC_ARGS = ['--expose-gc', '-r', path.join(BUILT, 'gc-preload.js')];

/** The server's RSS once idle and garbage-collected (see gc-preload.ts). */
async function idleRss(pid: number): Promise<number> {
  await sleep(IDLE_MS);
  for (let i = 0; i < 2; i++) {
    process.kill(pid, 'SIGUSR2');
    await sleep(500);
  }
  return rssBytes(pid);
}

/**
 * Several runs of one scenario folded into one: each figure is the best seen (highest
 * throughput, lowest latency, CPU and memory), since other work on a shared machine only
 * ever makes them worse. Every run stays in `runs`.
 */
function bestOf(runs: Scenario[]): Scenario {
  if (runs.length === 1) return runs[0];
  const min = (xs: number[]) => Math.min(...xs.filter(Number.isFinite));
  const sats = runs.map((r) => r.saturation).filter((x): x is NonNullable<Scenario['saturation']> => x !== undefined);
  const best = sats.reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a), sats[0]);
  return {
    ...runs[0],
    rssPerConnectionKiB: min(runs.map((r) => r.rssPerConnectionKiB)),
    rssPerConnectionAllKiB: min(runs.map((r) => r.rssPerConnectionAllKiB)),
    rates: runs[0].rates.map((rate, i) => ({
      ...rate,
      p50Ms: min(runs.map((r) => r.rates[i].p50Ms)),
      p99Ms: min(runs.map((r) => r.rates[i].p99Ms)),
      maxMs: min(runs.map((r) => r.rates[i].maxMs)),
    })),
    saturation: best && { ...best, cpuUsPerDelivery: min(sats.map((x) => x.cpuUsPerDelivery)) },
    notes: runs.flatMap((r) => r.notes),
    runs,
  };
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);

async function runScenario(opts: Options, mode: Mode, subscribers: number, mongoBase: string): Promise<Scenario> {
  const notes: string[] = [];
  const target = await startTarget(mode, mongoBase, subscribers, opts.server, opts.profile);
  const workers = new Workers(opts.workers);
  try {
    const cookies = mode === 'raw' ? [] : await identities(target.http, opts.identities);
    const send = sender(target, cookies[0]);
    let k = 0;
    // Warm the server's code paths before taking the base RSS.
    if (mode !== 'raw') for (let i = 0; i < 5; i++) await send(k++);
    const baseRss = await idleRss(target.pid);

    // Subscriptions attach asynchronously: send until one message reaches everyone.
    const allSubscribed = async () => {
      const deadline = nowMs() + 60000;
      for (;;) {
        const kk = k++;
        const done = workers.delivered(kk);
        await send(kk);
        if ((await withTimeout(done, 1000)) !== 'timeout') break;
        if (nowMs() > deadline) throw new Error('subscribers did not all receive a message within 60 s');
      }
      await sleep(500);
      await workers.report();
    };
    // Connect in two halves and take the RSS growth of the second: the first also pays for
    // one-off growth (V8's young generation expanding under the handshake burst, pools).
    const protocol = mode === 'raw' ? 'raw' : 'graphql';
    const half = Math.max(1, Math.floor(subscribers / 2));
    let t0 = nowMs();
    const first = await workers.connect(target.ws, protocol, cookies, half);
    let connectSeconds = (nowMs() - t0) / 1000;
    await allSubscribed();
    const halfRss = await idleRss(target.pid);
    t0 = nowMs();
    const conn = subscribers > half ? await workers.connect(target.ws, protocol, cookies, subscribers - half) : first;
    connectSeconds += (nowMs() - t0) / 1000;
    if (conn.failed + first.failed)
      notes.push(`${conn.failed + first.failed} connections failed (${conn.firstError ?? first.firstError})`);
    process.stdout.write(`  ${conn.open} subscribers connected in ${connectSeconds.toFixed(1)} s\n`);
    await allSubscribed();
    const fullRss = await idleRss(target.pid);
    const rssPerConnectionKiB = conn.open > first.open ? (fullRss - halfRss) / (conn.open - first.open) / 1024 : NaN;
    const rssPerConnectionAllKiB = (fullRss - baseRss) / conn.open / 1024;

    const rates: RateResult[] = [];
    for (const rate of opts.rates) {
      workers.record(true);
      const count = Math.max(1, Math.round(rate * opts.duration));
      const start = nowMs();
      const pending: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - nowMs();
        if (wait > 0) await sleep(wait);
        const kk = k++;
        pending.push(workers.delivered(kk));
        send(kk).catch((err) => notes.push(String(err)));
      }
      if ((await withTimeout(Promise.all(pending), 60000)) === 'timeout')
        notes.push(`rate ${rate}: not every message reached every subscriber within 60 s`);
      workers.record(false);
      const rep = await workers.report();
      rates.push({
        rate,
        messages: count,
        expected: count * conn.open,
        delivered: rep.latencies.length,
        p50Ms: quantile(rep.latencies, 0.5),
        p99Ms: quantile(rep.latencies, 0.99),
        maxMs: quantile(rep.latencies, 1),
      });
      process.stdout.write(
        `  ${rate} msg/s: p50 ${rates.at(-1)!.p50Ms.toFixed(1)} ms, p99 ${rates.at(-1)!.p99Ms.toFixed(1)} ms\n`,
      );
      await sleep(500);
    }

    // Saturation: keep `window` messages in flight for `duration` seconds.
    const cpu0 = cpuSeconds(target.pid);
    const loadCpu0 = workers.cpuSeconds();
    const start = nowMs();
    let completed = 0;
    let lastDone = start;
    let inFlight = 0;
    let stalled = false;
    await new Promise<void>((resolve) => {
      let watchdog = setTimeout(() => ((stalled = true), resolve()), 60000);
      const pump = () => {
        while (inFlight < opts.window && nowMs() - start < opts.duration * 1000) {
          inFlight++;
          const kk = k++;
          void workers.delivered(kk).then(() => {
            inFlight--;
            completed++;
            lastDone = nowMs();
            clearTimeout(watchdog);
            watchdog = setTimeout(() => ((stalled = true), resolve()), 60000);
            pump();
          });
          send(kk).catch((err) => notes.push(String(err)));
        }
        if (inFlight === 0) {
          clearTimeout(watchdog);
          resolve();
        }
      };
      pump();
    });
    if (stalled) notes.push('saturation: deliveries stalled for 60 s');
    const seconds = (lastDone - start) / 1000;
    const cores = (cpuSeconds(target.pid) - cpu0) / ((nowMs() - start) / 1000);
    const loadgenCores = (workers.cpuSeconds() - loadCpu0) / ((nowMs() - start) / 1000);
    const deliveries = completed * conn.open;
    const saturation = {
      messages: completed,
      seconds,
      deliveriesPerSec: deliveries / seconds,
      serverCores: cores,
      loadgenCores,
      cpuUsPerDelivery: ((cores * ((nowMs() - start) / 1000)) / deliveries) * 1e6,
    };
    process.stdout.write(
      `  saturation: ${Math.round(saturation.deliveriesPerSec)} deliveries/s, server ${(cores * 100).toFixed(0)}% CPU, load generators ${(loadgenCores * 100).toFixed(0)}%\n`,
    );
    const rep = await workers.report();
    if (rep.closed) notes.push(`${rep.closed} sockets were closed by the server`);
    if (rep.unexpected) notes.push(`${rep.unexpected} unexpected frames`);
    return {
      loadAvg: loadavg().map((l) => Math.round(l * 100) / 100),
      subscribers: conn.open,
      mode,
      connectSeconds,
      failedConnections: conn.failed + first.failed,
      rssPerConnectionKiB,
      rssPerConnectionAllKiB,
      rates,
      saturation,
      notes,
    };
  } finally {
    await workers.close();
    await target.stop();
  }
}

async function runHistory(
  opts: Options,
  mongoBase: string,
): Promise<{ history: HistoryResult[]; explain: BenchResult['explain'] }> {
  const target = await startTarget('grouped', mongoBase, 10, opts.server);
  const client = await MongoClient.connect(mongoBase);
  try {
    const [cookie] = await identities(target.http, 1);
    const me = (await (
      await fetch(target.http, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie },
        body: JSON.stringify({ query: '{ me { id } }' }),
      })
    ).json()) as { data: { me: { id: string } } };
    const db = client.db(target.dbName);
    const messages = db.collection('messages');
    const results: HistoryResult[] = [];
    let stored = await messages.countDocuments({});
    for (const size of opts.history) {
      const t0 = nowMs();
      const BATCH = 10000;
      while (stored < size) {
        const n = Math.min(BATCH, size - stored);
        const docs = Array.from({ length: n }, (_, i) => {
          const seq = stored + i + 1;
          return {
            _id: `lobby:${String(seq).padStart(12, '0')}`,
            conversation: 'lobby',
            seq,
            text: `history message ${seq}`,
            sender: me.data.me.id,
            recipient: null,
            clientId: null,
            createdAt: new Date(),
            readAt: null,
          };
        });
        await messages.insertMany(docs as never[], { ordered: false });
        stored += n;
        if (stored % 100000 === 0) process.stdout.write(`  seeded ${stored}\n`);
      }
      const seedSeconds = (nowMs() - t0) / 1000;
      const query = async () => {
        const s = nowMs();
        const r = await fetch(target.http, {
          method: 'POST',
          headers: { 'content-type': 'application/json', cookie },
          body: JSON.stringify({ query: HISTORY }),
        });
        const json = (await r.json()) as {
          data?: { messages: { edges: Array<{ node: { id: string } }> } };
          errors?: unknown;
        };
        const ms = nowMs() - s;
        const edges = json.data?.messages.edges ?? [];
        if (edges.length !== 50 || edges[49].node.id !== `lobby:${String(size).padStart(12, '0')}`) {
          throw new Error(`history page is wrong with ${size} stored: ${JSON.stringify(json).slice(0, 300)}`);
        }
        return ms;
      };
      for (let i = 0; i < 20; i++) await query();
      const samples: number[] = [];
      for (let i = 0; i < opts.historyRequests; i++) samples.push(await query());
      results.push({
        stored: size,
        seedSeconds,
        requests: samples.length,
        p50Ms: quantile(samples, 0.5),
        p99Ms: quantile(samples, 0.99),
      });
      process.stdout.write(
        `  messages(last: 50) with ${size} stored: p50 ${results.at(-1)!.p50Ms.toFixed(1)} ms, p99 ${results.at(-1)!.p99Ms.toFixed(1)} ms\n`,
      );
    }
    const explain = {
      pointLookup: await db.command({
        explain: { find: 'messages', filter: { _id: 'lobby:000000000001' } },
        verbosity: 'queryPlanner',
      }),
      rangeScan: await db.command({
        explain: { find: 'messages', filter: { _id: { $gte: 'lobby:', $lt: 'lobby;' } }, sort: { _id: -1 }, limit: 50 },
        verbosity: 'queryPlanner',
      }),
    };
    return { history: results, explain };
  } finally {
    await client.close();
    await target.stop();
  }
}

const f = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
const pct = (cores: number | undefined) =>
  cores === undefined || !Number.isFinite(cores) ? '–' : `${Math.round(cores * 100)}%`;
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !b ? '–' : `${(a / b).toFixed(2)}×`;

export function table(result: BenchResult): string {
  const rate = result.options.rates[0];
  const lines = [
    `| subscribers | mode | deliveries/s at saturation | × raw | server CPU (load gen.) | server CPU µs/delivery | p50 @ ${rate}/s | p99 @ ${rate}/s | p99 × raw | idle RSS/connection (all) |`,
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of result.scenarios) {
    const raw = result.scenarios.find((r) => r.mode === 'raw' && r.subscribers === s.subscribers);
    const r = s.rates.find((x) => x.rate === rate);
    const rr = raw?.rates.find((x) => x.rate === rate);
    lines.push(
      `| ${s.subscribers} | ${s.mode} | ${f(s.saturation?.deliveriesPerSec)} | ${ratio(s.saturation?.deliveriesPerSec, raw?.saturation?.deliveriesPerSec)} | ` +
        `${pct(s.saturation?.serverCores)} (${pct(s.saturation?.loadgenCores)}) | ${f(s.saturation?.cpuUsPerDelivery, 1)} | ` +
        `${f(r?.p50Ms, 1)} ms | ${f(r?.p99Ms, 1)} ms | ${ratio(r?.p99Ms, rr?.p99Ms)} | ${f(s.rssPerConnectionKiB, 1)} KiB (${f(s.rssPerConnectionAllKiB, 1)}) |`,
    );
  }
  for (const extra of result.options.rates.slice(1)) {
    lines.push(
      '',
      `Latency at ${extra} msg/s:`,
      '',
      '| subscribers | mode | p50 | p99 | p99 × raw |',
      '|---:|---|---:|---:|---:|',
    );
    for (const s of result.scenarios) {
      const r = s.rates.find((x) => x.rate === extra);
      const rr = result.scenarios
        .find((x) => x.mode === 'raw' && x.subscribers === s.subscribers)
        ?.rates.find((x) => x.rate === extra);
      lines.push(
        `| ${s.subscribers} | ${s.mode} | ${f(r?.p50Ms, 1)} ms | ${f(r?.p99Ms, 1)} ms | ${ratio(r?.p99Ms, rr?.p99Ms)} |`,
      );
    }
  }
  if (result.rooms) {
    const r = result.rooms;
    const lobby = result.scenarios.filter((x) => x.mode === 'grouped').at(-1);
    const lr = lobby?.rates[0];
    lines.push(
      '',
      `Rooms: ${r.rooms} rooms × ${r.membersPerRoom} subscribers (${r.subscribers}), grouped, against the lobby with ${lobby?.subscribers ?? '–'} (same run):`,
      '',
      '| case | deliveries/s at saturation | p50 | p99 | idle RSS |',
      '|---|---:|---:|---:|---:|',
      `| lobby, ${lobby?.subscribers ?? '–'} subscribers, ${lr?.rate ?? '–'} msg/s | ${f(lobby?.saturation?.deliveriesPerSec)} | ${f(lr?.p50Ms, 1)} ms | ${f(lr?.p99Ms, 1)} ms | ${f(lobby?.rssPerConnectionKiB, 1)} KiB/connection |`,
      `| rooms, ${r.rate.rate} msg/s to random rooms | ${f(r.saturation.deliveriesPerSec)} | ${f(r.rate.p50Ms, 1)} ms | ${f(r.rate.p99Ms, 1)} ms | ${f(r.rssPerRoomKiB, 1)} KiB/room (${f(r.rssPerRoomExclConnectionsKiB, 1)} without its connections) |`,
    );
  }
  if (result.history.length) {
    lines.push('', '| messages stored | `messages(last: 50)` p50 | p99 | p99 × smallest |', '|---:|---:|---:|---:|');
    for (const h of result.history)
      lines.push(
        `| ${h.stored} | ${f(h.p50Ms, 2)} ms | ${f(h.p99Ms, 2)} ms | ${ratio(h.p99Ms, result.history[0].p99Ms)} |`,
      );
  }
  return lines.join('\n');
}

const ROOM_SUBSCRIPTION =
  'subscription Room($room: ID) { messageAdded(room: $room) { id text createdAt sender { id username avatarUrl } } }';

/** Subscriptions attached on the server (its /metrics gauge). */
async function subscriptionsActive(target: Target): Promise<number> {
  const text = await (await fetch(target.http.replace(/\/graphql$/, '/metrics'))).text();
  const m = /^anonymo_subscriptions_active (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Rooms: `--rooms` public rooms with `--room-members` subscribers each (`messageAdded(room:)`),
 * messages to random rooms. Latency at a fixed rate, deliveries/s with `--window` sends in
 * flight, and the idle RSS per room; the lobby scenarios of the same run are the baseline.
 */
async function runRooms(opts: Options, mongoBase: string, lobbyRssPerConnectionKiB?: number): Promise<RoomsResult> {
  const notes: string[] = [];
  const subscribers = opts.rooms * opts.roomMembers;
  const target = await startTarget('grouped', mongoBase, subscribers, opts.server, opts.profile, {
    ROOMS_CREATED_PER_DAY: '100000',
    ROOMS_PER_USER: '100000',
  });
  const workers = new Workers(opts.workers);
  try {
    const cookies = await identities(target.http, opts.identities);
    const post = async (query: string, variables: Record<string, unknown>) => {
      const r = await fetch(target.http, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: cookies[0] },
        body: JSON.stringify({ query, variables }),
      });
      const json = (await r.json()) as { data?: Record<string, { id: string }>; errors?: unknown[] };
      if (!r.ok || json.errors) throw new Error(`request failed: ${r.status} ${JSON.stringify(json.errors)}`);
      return json.data!;
    };
    let t0 = nowMs();
    const roomIds: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < opts.rooms) {
          const i = next++;
          const d = await post('mutation($input: CreateRoomInput!) { createRoom(input: $input) { id } }', {
            input: { title: `bench room ${i}`, public: true },
          });
          roomIds[i] = d.createRoom.id;
        }
      }),
    );
    const createSeconds = (nowMs() - t0) / 1000;
    process.stdout.write(`  ${opts.rooms} rooms created in ${createSeconds.toFixed(1)} s\n`);
    let k = 0;
    const send = async (kk: number) => {
      const room = roomIds[kk % roomIds.length];
      await post(SEND, { input: { text: `b:${kk}:${nowMs().toFixed(3)}`, room } });
    };
    for (let i = 0; i < 5; i++) await send(k++);
    const baseRss = await idleRss(target.pid);
    t0 = nowMs();
    const conn = await workers.connect(
      target.ws,
      'graphql',
      cookies,
      subscribers,
      ROOM_SUBSCRIPTION,
      roomIds.map((room) => ({ room })),
    );
    if (conn.failed) notes.push(`${conn.failed} connections failed (${conn.firstError})`);
    const deadline = nowMs() + 120000;
    while ((await subscriptionsActive(target)) < conn.open) {
      if (nowMs() > deadline) throw new Error('room subscriptions did not all attach within 120 s');
      await sleep(200);
    }
    process.stdout.write(`  ${conn.open} room subscribers attached in ${((nowMs() - t0) / 1000).toFixed(1)} s\n`);
    const fullRss = await idleRss(target.pid);
    const rssPerRoomKiB = (fullRss - baseRss) / opts.rooms / 1024;

    // Fixed rate: the lobby phases' first rate, so p99 compares at the same message rate.
    const rate = opts.rates[0] ?? 2;
    await workers.report();
    workers.record(true);
    const count = Math.max(1, Math.round(rate * opts.duration));
    const start = nowMs();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const wait = start + (i * 1000) / rate - nowMs();
      if (wait > 0) await sleep(wait);
      sends.push(send(k++).catch((err) => void notes.push(String(err))));
    }
    await Promise.all(sends);
    const expected = count * opts.roomMembers;
    const settle = nowMs() + 10000;
    let rep = await workers.report();
    const latencies = [...rep.latencies];
    while (latencies.length < expected && nowMs() < settle) {
      await sleep(200);
      rep = await workers.report();
      latencies.push(...rep.latencies);
    }
    workers.record(false);
    if (latencies.length < expected) notes.push(`rate ${rate}: ${expected - latencies.length} deliveries missing`);
    const rateResult: RateResult = {
      rate,
      messages: count,
      expected,
      delivered: latencies.length,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: quantile(latencies, 1),
    };
    process.stdout.write(
      `  ${rate} msg/s to random rooms: p50 ${rateResult.p50Ms.toFixed(1)} ms, p99 ${rateResult.p99Ms.toFixed(1)} ms\n`,
    );

    // Saturation: `window` sends in flight for `duration` s; deliveries counted by the workers.
    await sleep(500);
    const before = (await workers.report()).delivered;
    const cpu0 = cpuSeconds(target.pid);
    const satStart = nowMs();
    let messages = 0;
    await Promise.all(
      Array.from({ length: opts.window }, async () => {
        while (nowMs() - satStart < opts.duration * 1000) {
          await send(k++).catch((err) => void notes.push(String(err)));
          messages++;
        }
      }),
    );
    await sleep(1000);
    const seconds = (nowMs() - satStart) / 1000;
    const delivered = (await workers.report()).delivered - before;
    const saturation = {
      messages,
      seconds,
      deliveriesPerSec: delivered / seconds,
      serverCores: (cpuSeconds(target.pid) - cpu0) / seconds,
    };
    process.stdout.write(
      `  saturation: ${Math.round(saturation.deliveriesPerSec)} deliveries/s (${messages} messages), server ${(saturation.serverCores * 100).toFixed(0)}% CPU\n`,
    );
    return {
      rooms: opts.rooms,
      membersPerRoom: opts.roomMembers,
      subscribers: conn.open,
      createSeconds,
      rssPerRoomKiB,
      rssPerRoomExclConnectionsKiB:
        lobbyRssPerConnectionKiB === undefined
          ? undefined
          : rssPerRoomKiB - lobbyRssPerConnectionKiB * opts.roomMembers,
      rate: rateResult,
      saturation,
      notes,
    };
  } finally {
    await workers.close();
    await target.stop();
  }
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const limit = openFileLimit();
  const machine: BenchResult['machine'] = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAvgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    openFileLimit: limit,
  };
  for (const n of opts.subscribers) {
    // The server holds one descriptor per socket plus its database connections and listeners.
    if (n + 100 > limit)
      throw new Error(`--subscribers ${n}: the open-file limit is ${limit} (ulimit -n); at most ${limit - 100} fit`);
  }
  const build = spawnSync('bash', [path.join(ROOT, 'scripts', 'build-ferretdb.sh')], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('scripts/build-ferretdb.sh failed');
  const dbDir = mkdtempSync(path.join(tmpdir(), 'anonymo-bench-db-'));
  let ferret: EmbeddedDatabase | undefined;
  const result: BenchResult = {
    startedAt: new Date().toISOString(),
    machine,
    options: opts,
    scenarios: [],
    history: [],
  };
  try {
    ferret = await startFerretDB({
      dataDir: dbDir,
      dbName: 'unused',
      ferretdbBin: path.join(ROOT, '.tools', 'bin', 'ferretdb'),
    });
    const mongoBase = ferret.uri.replace(/unused$/, '');
    console.log(
      `Benchmark on ${machine.cpus} CPUs, ${machine.memGiB} GiB, Node ${machine.node}, load ${machine.loadAvgAtStart.join(' ')}`,
    );
    for (const n of opts.subscribers) {
      // Repeats are interleaved (raw, per-subscriber, grouped, raw, ...) so that a burst of
      // other work on the machine does not land on one mode only.
      const runs = new Map<Mode, Scenario[]>(opts.modes.map((m) => [m, []]));
      for (let r = 0; r < opts.repeat; r++) {
        for (const mode of opts.modes) {
          console.log(`\n== ${n} subscribers, ${mode}${opts.repeat > 1 ? `, run ${r + 1} of ${opts.repeat}` : ''}`);
          runs.get(mode)!.push(await runScenario(opts, mode, n, mongoBase));
        }
      }
      for (const mode of opts.modes) result.scenarios.push(bestOf(runs.get(mode)!));
    }
    if (opts.rooms > 0) {
      console.log(`\n== ${opts.rooms} rooms × ${opts.roomMembers} members, grouped`);
      const lobby = result.scenarios.filter((x) => x.mode === 'grouped').at(-1);
      result.rooms = await runRooms(opts, mongoBase, lobby?.rssPerConnectionKiB);
    }
    if (opts.history.length) {
      console.log('\n== history');
      const h = await runHistory(opts, mongoBase);
      result.history = h.history;
      result.explain = h.explain;
    }
  } finally {
    await ferret?.stop();
    rmSync(dbDir, { recursive: true, force: true });
  }
  mkdirSync(opts.out, { recursive: true });
  writeFileSync(path.join(opts.out, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(path.join(opts.out, 'latest.svg'), renderChart(result));
  const md = table(result);
  writeFileSync(path.join(opts.out, 'latest.md'), `${md}\n`);
  console.log(`\n${md}\n`);
  for (const s of result.scenarios) for (const n of s.notes) console.log(`note (${s.subscribers} ${s.mode}): ${n}`);
  if (result.explain)
    console.log(
      '\nFerretDB explain of the point lookup messages(last: 50) issues:\n' +
        JSON.stringify(result.explain.pointLookup, null, 2),
    );
  console.log(`\nWrote ${path.relative(ROOT, path.join(opts.out, 'latest.json'))} and latest.svg`);
}

if (require.main === module) {
  // `npm run bench -- --writes`: the write-path benchmark (bench/writes.ts) instead;
  // `npm run bench -- --storm`: the reconnect storm (bench/storm.ts).
  /* eslint-disable @typescript-eslint/no-require-imports */
  const run = process.argv.includes('--writes')
    ? (require('./writes') as typeof import('./writes')).main
    : process.argv.includes('--storm')
      ? (require('./storm') as typeof import('./storm')).main
      : main;
  /* eslint-enable @typescript-eslint/no-require-imports */
  run().then(
    () => process.exit(process.exitCode ?? 0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
