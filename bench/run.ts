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
 *   --repeat 1                runs of each scenario (interleaved); each figure is their median, with the spread
 *   --out bench/results       where latest.json / latest.svg go
 *   --profile DIR             run the Anonymo servers with `node --cpu-prof` into DIR
 *   --server FILE             the server to start (default dist/main.js; e.g. an older build to compare)
 *   --rooms 1000              rooms for the rooms phase (0 skips): each with --room-members
 *   --room-members 10         subscribers per room (`messageAdded(room:)`), messages sent to random rooms
 *   --rounds 0                connection churn (bench/churn.ts): rounds of --churn-subscribers sockets
 *                             connecting, receiving --rates[0] msg/s for --duration s, and leaving,
 *                             per mode (not per-subscriber); 0 skips
 *   --churn-subscribers 10000
 *   --blocking 10             percent of lobby viewers who block someone (a user who sends nothing); 0 skips.
 *                             One grouped server with the largest --subscribers: deliveries/s at saturation
 *                             with nobody blocking, then with that share blocking, on the same sockets
 *                             (--repeat rounds, best of each), their ratio, and executions per event
 *   --lifecycle               message lifecycle (bench/lifecycle.ts; default off): --lifecycle-reactors users
 *                             reacting to one lobby message at once (on, then off) with --lifecycle-subscribers
 *                             messageUpdated subscribers: wall time, exact final count, update deliveries/s;
 *                             then --lifecycle-expired expired messages seeded and purged (PURGE_INTERVAL_MS=10000)
 *                             while the chat sends 3 msg/s: purge time and database commands
 *   --lifecycle-subscribers 300
 *   --lifecycle-reactors 100
 *   --lifecycle-expired 100000  0 skips the purge
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { startFerretDB, type EmbeddedDatabase } from '../src/db/embedded';
import { renderChart } from './chart';
import { runChurn, churnTable, type ChurnResult } from './churn';
import { lifecycleTable, runLifecycle, type LifecycleResult } from './lifecycle';
import {
  MODES,
  ROOT,
  SEND,
  identities,
  idleRss,
  isBaseline,
  protocolOf,
  ratePhase,
  sender,
  startTarget,
  subscriptionsActive,
  untilAllSubscribed,
  Workers,
  type Mode,
  type RateResult,
} from './harness';
import { cpuSeconds, nowMs, quantile, sleep } from './stats';

export { identities, Workers };

const HISTORY =
  'query History { messages(last: 50) { edges { cursor node { id text createdAt sender { id username } } } pageInfo { hasPreviousPage } } }';

export type { RateResult };
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
  /** With --repeat: every run; the figures above are their medians. */
  runs?: Scenario[];
  /** With --repeat: the lowest and highest of each headline figure over the runs. */
  spread?: { deliveriesPerSec: [number, number]; cpuUsPerDelivery: [number, number]; p99Ms: [number, number] };
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
export interface BlockingRun {
  /** Percent of the subscribed viewers who block someone. */
  percent: number;
  messages: number;
  deliveriesPerSec: number;
  serverCores: number;
  /** Grouped executions per event (the server's anonymo_fanout_executions_total). */
  executionsPerEvent: number;
}
export interface BlockingResult {
  subscribers: number;
  percent: number;
  /** Identities (and so viewers' sockets, round-robin) that block someone. */
  blockingIdentities: number;
  identities: number;
  runs: BlockingRun[];
  /** Best of each percentage, and blocking / none (goal ≥ 0.9). */
  none: BlockingRun;
  some: BlockingRun;
  ratio: number;
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
  churn?: ChurnResult[];
  blocking?: BlockingResult;
  lifecycle?: LifecycleResult;
}

export interface Options {
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
  rounds: number;
  churnSubscribers: number;
  blocking: number;
  lifecycle: boolean;
  lifecycleSubscribers: number;
  lifecycleReactors: number;
  lifecycleExpired: number;
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
      rounds: { type: 'string', default: '0' },
      'churn-subscribers': { type: 'string', default: '10000' },
      blocking: { type: 'string', default: '0' },
      lifecycle: { type: 'boolean', default: false },
      'lifecycle-subscribers': { type: 'string', default: '300' },
      'lifecycle-reactors': { type: 'string', default: '100' },
      'lifecycle-expired': { type: 'string', default: '100000' },
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
    rounds: Math.floor(nums(values.rounds, 'rounds')[0]),
    churnSubscribers: Math.max(1, Math.floor(nums(values['churn-subscribers'], 'churn-subscribers')[0])),
    blocking: Math.min(100, nums(values.blocking, 'blocking')[0]),
    lifecycle: values.lifecycle,
    lifecycleSubscribers: Math.max(1, Math.floor(nums(values['lifecycle-subscribers'], 'lifecycle-subscribers')[0])),
    lifecycleReactors: Math.max(1, Math.floor(nums(values['lifecycle-reactors'], 'lifecycle-reactors')[0])),
    lifecycleExpired: Math.floor(nums(values['lifecycle-expired'], 'lifecycle-expired')[0]),
  };
}

function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : Infinity;
}

/**
 * Several interleaved runs of one scenario folded into one: each figure is the median of
 * the runs (a shared machine makes single runs swing both ways), and `spread` keeps the
 * lowest and highest seen. Every run stays in `runs`.
 */
function medianOf(runs: Scenario[]): Scenario {
  if (runs.length === 1) return runs[0];
  const med = (xs: number[]) => quantile(xs.filter(Number.isFinite), 0.5);
  const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
  const sats = runs.map((r) => r.saturation).filter((x): x is NonNullable<Scenario['saturation']> => x !== undefined);
  const pick = (key: keyof NonNullable<Scenario['saturation']>) => med(sats.map((x) => x[key]));
  return {
    ...runs[0],
    rssPerConnectionKiB: med(runs.map((r) => r.rssPerConnectionKiB)),
    rssPerConnectionAllKiB: med(runs.map((r) => r.rssPerConnectionAllKiB)),
    rates: runs[0].rates.map((rate, i) => ({
      ...rate,
      p50Ms: med(runs.map((r) => r.rates[i].p50Ms)),
      p99Ms: med(runs.map((r) => r.rates[i].p99Ms)),
      maxMs: med(runs.map((r) => r.rates[i].maxMs)),
    })),
    saturation: sats.length
      ? {
          messages: pick('messages'),
          seconds: pick('seconds'),
          deliveriesPerSec: pick('deliveriesPerSec'),
          serverCores: pick('serverCores'),
          loadgenCores: pick('loadgenCores'),
          cpuUsPerDelivery: pick('cpuUsPerDelivery'),
        }
      : undefined,
    spread: {
      deliveriesPerSec: range(sats.map((x) => x.deliveriesPerSec)),
      cpuUsPerDelivery: range(sats.map((x) => x.cpuUsPerDelivery)),
      p99Ms: range(runs.map((r) => r.rates[0]?.p99Ms ?? NaN)),
    },
    notes: runs.flatMap((r) => r.notes),
    runs,
  };
}

/**
 * Keeps `window` lobby messages in flight for `duration` seconds (each counted once it reached
 * every socket); `next()` numbers them. How many completed, over how long.
 */
async function saturate(
  workers: Workers,
  send: (k: number) => Promise<void>,
  next: () => number,
  opts: Pick<Options, 'window' | 'duration'>,
  notes: string[],
): Promise<{ completed: number; seconds: number }> {
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
        const kk = next();
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
  return { completed, seconds: (lastDone - start) / 1000 };
}

/** A sample of the server's /metrics (on its METRICS_PORT listener; 0 when absent). */
async function metricOf(metricsUrl: string, line: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  for (const l of text.split('\n')) if (l.startsWith(`${line} `)) return Number(l.slice(line.length + 1));
  return 0;
}

const EXECUTIONS = 'anonymo_fanout_executions_total{kind="message"}';

/**
 * Lobby fan-out with `--blocking` percent of the viewers blocking someone, against nobody
 * blocking, on one grouped server and the same subscribed sockets. The blocked user sends
 * nothing, so every viewer still receives every message: what is measured is what the
 * blocked sets cost the fan-out (the design keeps one execution per event and group).
 */
async function runBlocking(opts: Options, mongoBase: string): Promise<BlockingResult> {
  const notes: string[] = [];
  const subscribers = Math.max(...opts.subscribers);
  const target = await startTarget('grouped', mongoBase, subscribers, opts.server, opts.profile);
  const metricsUrl = target.metrics!;
  const workers = new Workers(opts.workers);
  try {
    // Viewers' identities (sockets take them round-robin), plus a sender and a quiet user.
    const [senderCookie, quietCookie, ...cookies] = await identities(target.http, opts.identities + 2);
    const post = async (cookie: string, query: string, variables: Record<string, unknown> = {}) => {
      const r = await fetch(target.http, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie },
        body: JSON.stringify({ query, variables }),
      });
      const json = (await r.json()) as { data?: { me?: { id: string } }; errors?: unknown[] };
      if (!r.ok || json.errors) throw new Error(`request failed: ${r.status} ${JSON.stringify(json.errors)}`);
      return json.data!;
    };
    const quietId = (await post(quietCookie, '{ me { id } }')).me!.id;
    const blockingIdentities = Math.round((cookies.length * opts.blocking) / 100);
    const blockers = cookies.slice(0, blockingIdentities);
    const send = sender(target, senderCookie);
    let k = 0;
    for (let i = 0; i < 5; i++) await send(k++);
    const conn = await workers.connect(target.ws, 'graphql', cookies, subscribers);
    if (conn.failed) notes.push(`${conn.failed} connections failed (${conn.firstError})`);
    process.stdout.write(
      `  ${conn.open} subscribers on ${cookies.length} identities, ${blockingIdentities} of them blocking when asked\n`,
    );
    await untilAllSubscribed(workers, send, () => k++);

    const setBlocks = async (on: boolean) => {
      const op = on ? 'blockUser' : 'unblockUser';
      for (const c of blockers) await post(c, `mutation($id: ID!) { ${op}(id: $id) }`, { id: quietId });
      // Block changes reach the fan-out through pub/sub: let them land before measuring.
      await sleep(500);
    };
    const runs: BlockingRun[] = [];
    for (let r = 0; r < opts.repeat; r++) {
      for (const percent of [0, opts.blocking]) {
        await setBlocks(percent > 0);
        const exec0 = await metricOf(metricsUrl, EXECUTIONS);
        const cpu0 = cpuSeconds(target.pid);
        const t0 = nowMs();
        const { completed, seconds } = await saturate(workers, send, () => k++, opts, notes);
        const cores = (cpuSeconds(target.pid) - cpu0) / ((nowMs() - t0) / 1000);
        const executions = (await metricOf(metricsUrl, EXECUTIONS)) - exec0;
        runs.push({
          percent,
          messages: completed,
          deliveriesPerSec: (completed * conn.open) / seconds,
          serverCores: cores,
          executionsPerEvent: completed ? executions / completed : NaN,
        });
        const last = runs.at(-1)!;
        process.stdout.write(
          `  ${percent}% blocking: ${Math.round(last.deliveriesPerSec)} deliveries/s, ` +
            `${last.executionsPerEvent.toFixed(2)} executions/event, server ${(cores * 100).toFixed(0)}% CPU\n`,
        );
        await sleep(500);
      }
      await setBlocks(false);
    }
    const best = (percent: number) =>
      runs.filter((x) => x.percent === percent).reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a));
    const none = best(0);
    const some = best(opts.blocking);
    const rep = await workers.report();
    if (rep.closed) notes.push(`${rep.closed} sockets were closed by the server`);
    if (rep.unexpected) notes.push(`${rep.unexpected} unexpected frames`);
    return {
      subscribers: conn.open,
      percent: opts.blocking,
      blockingIdentities,
      identities: cookies.length,
      runs,
      none,
      some,
      ratio: some.deliveriesPerSec / none.deliveriesPerSec,
      notes,
    };
  } finally {
    await workers.close();
    await target.stop();
  }
}

async function runScenario(opts: Options, mode: Mode, subscribers: number, mongoBase: string): Promise<Scenario> {
  const notes: string[] = [];
  const target = await startTarget(mode, mongoBase, subscribers, opts.server, opts.profile);
  const workers = new Workers(opts.workers);
  try {
    const cookies = isBaseline(mode) ? [] : await identities(target.http, opts.identities);
    const send = sender(target, cookies[0]);
    let k = 0;
    // Warm the server's code paths before taking the base RSS.
    if (!isBaseline(mode)) for (let i = 0; i < 5; i++) await send(k++);
    const baseRss = await idleRss(target.pid);

    const next = () => k++;
    const allSubscribed = () => untilAllSubscribed(workers, send, next);
    // Connect in two halves and take the RSS growth of the second: the first also pays for
    // one-off growth (V8's young generation expanding under the handshake burst, pools).
    const protocol = protocolOf(mode);
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
      const r = await ratePhase(workers, send, next, { rate, seconds: opts.duration, open: conn.open }, notes);
      rates.push(r);
      process.stdout.write(`  ${rate} msg/s: p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms\n`);
      await sleep(500);
    }

    // Saturation: keep `window` messages in flight for `duration` seconds.
    const cpu0 = cpuSeconds(target.pid);
    const loadCpu0 = workers.cpuSeconds();
    const start = nowMs();
    const { completed, seconds } = await saturate(workers, send, () => k++, opts, notes);
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
  const repeats = result.options.repeat > 1 ? ` (median of ${result.options.repeat} interleaved runs; min–max)` : '';
  const spread = (x: [number, number] | undefined, d = 0) => (x ? ` (${f(x[0], d)}–${f(x[1], d)})` : '');
  const lines = [
    `Lobby fan-out${repeats}:`,
    '',
    `| subscribers | mode | deliveries/s at saturation | × raw | × Socket.IO | server CPU (load gen.) | server CPU µs/delivery | CPU × raw | p50 @ ${rate}/s | p99 @ ${rate}/s | p99 × raw | idle RSS/connection (all) |`,
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of result.scenarios) {
    const same = (mode: Mode) => result.scenarios.find((r) => r.mode === mode && r.subscribers === s.subscribers);
    const raw = same('raw');
    const sio = same('socketio');
    const r = s.rates.find((x) => x.rate === rate);
    const rr = raw?.rates.find((x) => x.rate === rate);
    lines.push(
      `| ${s.subscribers} | ${s.mode} | ${f(s.saturation?.deliveriesPerSec)}${spread(s.spread?.deliveriesPerSec)} | ` +
        `${ratio(s.saturation?.deliveriesPerSec, raw?.saturation?.deliveriesPerSec)} | ${ratio(s.saturation?.deliveriesPerSec, sio?.saturation?.deliveriesPerSec)} | ` +
        `${pct(s.saturation?.serverCores)} (${pct(s.saturation?.loadgenCores)}) | ${f(s.saturation?.cpuUsPerDelivery, 1)}${spread(s.spread?.cpuUsPerDelivery, 1)} | ` +
        `${ratio(s.saturation?.cpuUsPerDelivery, raw?.saturation?.cpuUsPerDelivery)} | ` +
        `${f(r?.p50Ms, 1)} ms | ${f(r?.p99Ms, 1)} ms${spread(s.spread?.p99Ms, 1)} | ${ratio(r?.p99Ms, rr?.p99Ms)} | ${f(s.rssPerConnectionKiB, 1)} KiB (${f(s.rssPerConnectionAllKiB, 1)}) |`,
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
  if (result.churn?.length) lines.push('', churnTable(result.churn));
  if (result.blocking) {
    const b = result.blocking;
    lines.push(
      '',
      `Blocking: ${b.subscribers} lobby subscribers (grouped) on ${b.identities} identities, ${b.blockingIdentities} of them blocking a user who sends nothing (same server and sockets):`,
      '',
      '| viewers blocking | deliveries/s at saturation | × none | executions/event | server CPU |',
      '|---:|---:|---:|---:|---:|',
      ...[b.none, b.some].map(
        (x) =>
          `| ${x.percent}% | ${f(x.deliveriesPerSec)} | ${ratio(x.deliveriesPerSec, b.none.deliveriesPerSec)} | ${f(x.executionsPerEvent, 2)} | ${pct(x.serverCores)} |`,
      ),
    );
  }
  if (result.lifecycle) lines.push('', lifecycleTable(result.lifecycle));
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
  for (const n of [...opts.subscribers, ...(opts.rounds > 0 ? [opts.churnSubscribers] : [])]) {
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
      for (const mode of opts.modes) result.scenarios.push(medianOf(runs.get(mode)!));
    }
    if (opts.rounds > 0) {
      result.churn = [];
      for (const mode of opts.modes.filter((m) => m !== 'per-subscriber')) {
        console.log(`\n== churn: ${opts.rounds} rounds of ${opts.churnSubscribers} sockets, ${mode}`);
        result.churn.push(await runChurn(opts, mode, opts.churnSubscribers, mongoBase));
      }
    }
    if (opts.rooms > 0) {
      console.log(`\n== ${opts.rooms} rooms × ${opts.roomMembers} members, grouped`);
      const lobby = result.scenarios.filter((x) => x.mode === 'grouped').at(-1);
      result.rooms = await runRooms(opts, mongoBase, lobby?.rssPerConnectionKiB);
    }
    if (opts.blocking > 0) {
      console.log(`\n== lobby, ${Math.max(...opts.subscribers)} subscribers, ${opts.blocking}% of viewers blocking`);
      result.blocking = await runBlocking(opts, mongoBase);
    }
    if (opts.lifecycle) {
      console.log(
        `\n== lifecycle: ${opts.lifecycleReactors} reactors, ${opts.lifecycleSubscribers} messageUpdated subscribers; purge of ${opts.lifecycleExpired}`,
      );
      result.lifecycle = await runLifecycle(
        {
          server: opts.server,
          profile: opts.profile,
          workers: opts.workers,
          subscribers: opts.lifecycleSubscribers,
          reactors: opts.lifecycleReactors,
          expired: opts.lifecycleExpired,
        },
        mongoBase,
      );
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
  for (const n of result.blocking?.notes ?? []) console.log(`note (blocking): ${n}`);
  for (const n of result.lifecycle?.notes ?? []) console.log(`note (lifecycle): ${n}`);
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
