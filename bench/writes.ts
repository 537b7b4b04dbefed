/**
 * `npm run bench:writes` (or `npm run bench -- --writes`): write-path benchmark on the
 * embedded FerretDB, load generator on the same machine.
 *
 * 1. Baseline: the bare MongoDB driver, `--senders` concurrent writers each doing `--per`
 *    `insertOne`s (one insert per message, no Anonymo).
 * 2. Anonymo (`--server`, default dist/main.js; RATE_LIMITS=off), `--senders` users each
 *    sending `--per` messages with a clientId, all at once, for four workloads: over HTTP and
 *    over WebSocket mutations, all to the lobby and each to a different DM partner.
 *    Stored messages/s (counted in the database), send latency p50/p99, server and FerretDB
 *    CPU per message, database commands per message (the server's anonymo_db_commands_total).
 *    Before them, the HTTP lobby workload against the floor (bench/http-floor-server.ts: express,
 *    express-session and Apollo Server answering `sendMessage` with a counter): what the chosen
 *    HTTP stack costs before any of Anonymo's work, measured in the same run.
 * 3. `messages(last: 50)` latency with `--history` messages stored in the lobby.
 *
 * Flags: --senders 100 --per 20 --history 10000,1000000 --history-requests 200
 *        --server dist/main.js --out bench/results
 *        --node-args=…   the server's Node options (default those of `npm start`), e.g. to run
 *                        an older build as it was deployed: --server ../old/dist/main.js
 *                        --node-args=--max-semi-space-size=4 (with "=": the value starts with a dash)
 *        --profile DIR   write a V8 CPU profile of each server (node --cpu-prof) into DIR
 *        --only NAMES    comma-separated workload keys to run: http-floor, http-lobby, http-dm, ws-lobby,
 *                        ws-dm
 *                        (default all; the baseline always runs)
 *        --warmup 4      rounds of the same workload, with other users, on the same server before
 *                        the measured ones. A server in service has run its code paths millions of
 *                        times; a fresh process runs its first requests unoptimised, and V8 keeps
 *                        optimising for several thousand (HTTP sends: server CPU per message fell
 *                        from ~1.2 ms in round 1 to ~0.5 ms by rounds 4–5, the stack alone from
 *                        ~1.0 to ~0.3 ms by round 3). The first (cold) round is reported too, in
 *                        its own row.
 *        --rounds 5      measured rounds per workload: each row is their median (range of
 *                        stored/s and p99 in brackets). Single rounds on this machine vary by
 *                        ±30 %, with its speed from minute to minute.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import { MongoClient } from 'mongodb';
import WebSocket from 'ws';
import { startFerretDB, type EmbeddedDatabase } from '../src/db/embedded';
import { graphqlPost } from './graphql-post';
import { BUILT, SERVER_NODE_ARGS, startTarget, type Target } from './harness';
import { cpuSeconds, nowMs, quantile } from './stats';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SEND = 'mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const HISTORY = 'query History { messages(last: 50) { edges { node { id text } } pageInfo { hasPreviousPage } } }';

interface Options {
  senders: number;
  per: number;
  history: number[];
  historyRequests: number;
  server: string;
  out: string;
  profile?: string;
  nodeArgs?: string[];
  only?: Set<string>;
  warmup: number;
  rounds: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      senders: { type: 'string', default: '100' },
      per: { type: 'string', default: '20' },
      history: { type: 'string', default: '10000,1000000' },
      'history-requests': { type: 'string', default: '200' },
      server: { type: 'string', default: path.join(ROOT, 'dist', 'main.js') },
      out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
      profile: { type: 'string' },
      'node-args': { type: 'string' },
      only: { type: 'string' },
      warmup: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '5' },
      writes: { type: 'boolean', default: true },
    },
    allowPositionals: false,
  });
  return {
    senders: Number(values.senders),
    per: Number(values.per),
    history: values.history
      .split(',')
      .map(Number)
      .filter((n) => n > 0),
    historyRequests: Number(values['history-requests']),
    server: path.resolve(values.server),
    nodeArgs: values['node-args']?.split(/\s+/).filter(Boolean),
    out: path.resolve(values.out),
    profile: values.profile ? path.resolve(values.profile) : undefined,
    only: values.only ? new Set(values.only.split(',').map((w) => w.trim())) : undefined,
    warmup: Number(values.warmup),
    rounds: Math.max(1, Number(values.rounds)),
  };
}

export interface WriteResult {
  workload: string;
  messages: number;
  stored: number;
  seconds: number;
  storedPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Each sender's first message of the run (to a new DM partner: the conversation's creation). */
  firstP50Ms?: number;
  firstP99Ms?: number;
  serverCpuMsPerMessage: number;
  ferretCpuMsPerMessage: number;
  /** CPU of this load-generator process per message (it shares the machine's 2 cores). */
  loadgenCpuMsPerMessage: number;
  /** undefined for a server without command counting (older builds). */
  commandsPerMessage?: number;
  /** The same by command name (insert, find, update, ...). */
  commandsByName?: Record<string, number>;
  errors: number;
  /** Over the measured rounds (the row is their median): lowest and highest. */
  storedPerSecRange?: [number, number];
  p99Range?: [number, number];
}

type Server = Target;

/** One Anonymo server under test (grouped fan-out, rate limits off), on the shared embedded database. */
const startServer = (file: string, mongoBase: string, profile?: string, nodeArgs?: string[]): Promise<Server> =>
  startTarget('grouped', mongoBase, 1000, file, profile, {}, nodeArgs);

/**
 * The stack alone (bench/http-floor-server.ts), started like a server under test with the same
 * Node options. It stores nothing and has no metrics: its "stored" messages are its answers.
 */
const startFloor = async (mongoBase: string, profile?: string, nodeArgs?: string[]): Promise<Server> => ({
  ...(await startServer(path.join(BUILT, 'http-floor-server.js'), mongoBase, profile, nodeArgs)),
  metrics: undefined,
});

/** One keep-alive connection per concurrent sender (graphqlPost: node:http, not fetch). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 1000 });

async function post(
  url: string,
  cookie: string | undefined,
  query: string,
  variables?: unknown,
): Promise<{ body: { data?: Record<string, any>; errors?: unknown[] }; cookie: string | undefined }> {
  const r = await graphqlPost(url, { query, variables }, { agent, cookie });
  return { body: { data: r.data, errors: r.errors }, cookie: r.cookie ?? cookie };
}

async function identity(url: string): Promise<{ cookie: string; id: string }> {
  const r = await post(url, undefined, '{ me { id } }');
  return { cookie: r.cookie!, id: (r.body.data as { me: { id: string } }).me.id };
}

/** The server's anonymo_db_commands_total by command name (undefined for builds without it, and the floor). */
async function commandCounts(server: Server): Promise<Record<string, number> | undefined> {
  if (!server.metrics) return undefined;
  const text = await (await fetch(server.metrics)).text();
  let counts: Record<string, number> | undefined;
  for (const m of text.matchAll(/^anonymo_db_commands_total\{command="([^"]*)"\} (\S+)$/gm)) {
    (counts ??= {})[m[1]] = Number(m[2]);
  }
  return counts;
}

const sumOf = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

async function commandsTotal(server: Server): Promise<number | undefined> {
  const counts = await commandCounts(server);
  return counts && sumOf(counts);
}

/** Commands per message by name between two readings, e.g. { insert: 0.03, find: 0.01 }. */
function commandsPerMessageByName(
  before: Record<string, number> | undefined,
  after: Record<string, number> | undefined,
  messages: number,
): Record<string, number> | undefined {
  if (!before || !after) return undefined;
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) {
    const d = n - (before[name] ?? 0);
    if (d > 0) out[name] = Math.round((d / messages) * 1000) / 1000;
  }
  return out;
}

function wsClient(url: string, cookie: string): Client {
  class CookieWebSocket extends WebSocket {
    constructor(u: string, protocols?: string | string[]) {
      super(u, protocols, { headers: { cookie } });
    }
  }
  return createClient({ url, webSocketImpl: CookieWebSocket, retryAttempts: 0, lazy: false });
}

function wsSend(client: Client, variables: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    let ok = false;
    client.subscribe(
      { query: SEND, variables },
      {
        next: (r) => {
          ok = !r.errors;
        },
        error: reject,
        complete: () => (ok ? resolve() : reject(new Error('sendMessage failed'))),
      },
    );
  });
}

async function workload(
  name: string,
  opts: Options,
  server: Server,
  ferret: EmbeddedDatabase,
  mongo: MongoClient,
  transport: 'http' | 'ws',
  direct: boolean,
): Promise<WriteResult> {
  const senders = await Promise.all(Array.from({ length: opts.senders }, () => identity(server.http)));
  const partners = direct ? await Promise.all(senders.map(() => identity(server.http))) : [];
  const clients = transport === 'ws' ? senders.map((s) => wsClient(server.ws, s.cookie)) : [];
  // Every sender's first message, to the lobby and not measured, on both transports: over
  // WebSocket it is the connection's first operation; over HTTP it warms the same path.
  const hello = { input: { text: 'hello', clientId: 'w' } };
  if (clients.length) await Promise.all(clients.map((c) => wsSend(c, hello)));
  else await Promise.all(senders.map((s) => post(server.http, s.cookie, SEND, hello)));
  const messages = opts.senders * opts.per;
  const coll = mongo.db(server.dbName).collection('messages');
  // The floor stores nothing: its count is of the sends it answered.
  let answered = 0;
  const countStored = () => (server.metrics ? coll.countDocuments({}) : Promise.resolve(answered));
  const storedBefore = await countStored();
  const commandsBefore = await commandCounts(server);
  const cpu0 = cpuSeconds(server.pid);
  const ferretCpu0 = cpuSeconds(ferret.process!.pid!);
  const loadgenCpu0 = process.cpuUsage();
  const latencies: number[] = [];
  const firsts: number[] = [];
  let errors = 0;
  const t0 = nowMs();
  await Promise.all(
    senders.map(async (s, k) => {
      for (let i = 0; i < opts.per; i++) {
        const input = { text: `${name} ${k}-${i}`, clientId: `${k}-${i}`, ...(direct ? { to: partners[k].id } : {}) };
        const start = nowMs();
        try {
          if (transport === 'ws') await wsSend(clients[k], { input });
          else {
            const r = await post(server.http, s.cookie, SEND, { input });
            if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
          }
          answered++;
          latencies.push(nowMs() - start);
          if (i === 0) firsts.push(nowMs() - start);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (nowMs() - t0) / 1000;
  const cpu = cpuSeconds(server.pid) - cpu0;
  const ferretCpu = cpuSeconds(ferret.process!.pid!) - ferretCpu0;
  const loadgenCpu = process.cpuUsage(loadgenCpu0);
  const commandsAfter = await commandCounts(server);
  const stored = (await countStored()) - storedBefore;
  for (const c of clients) void c.dispose();
  const result: WriteResult = {
    workload: name,
    messages,
    stored,
    seconds,
    storedPerSec: stored / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    firstP50Ms: quantile(firsts, 0.5),
    firstP99Ms: quantile(firsts, 0.99),
    serverCpuMsPerMessage: (cpu * 1000) / messages,
    ferretCpuMsPerMessage: (ferretCpu * 1000) / messages,
    loadgenCpuMsPerMessage: (loadgenCpu.user + loadgenCpu.system) / 1000 / messages,
    commandsPerMessage:
      commandsBefore !== undefined && commandsAfter !== undefined
        ? (sumOf(commandsAfter) - sumOf(commandsBefore)) / messages
        : undefined,
    commandsByName: commandsPerMessageByName(commandsBefore, commandsAfter, messages),
    errors,
  };
  console.log(`  ${name}: ${JSON.stringify(result)}`);
  return result;
}

/** The measured rounds of one workload as one row: each figure is the median of its rounds. */
export function medianOf(workload: string, rounds: readonly WriteResult[]): WriteResult {
  const med = (pick: (r: WriteResult) => number | undefined): number | undefined => {
    const xs = rounds.map(pick).filter((x): x is number => x !== undefined);
    return xs.length ? quantile(xs, 0.5) : undefined;
  };
  const range = (pick: (r: WriteResult) => number): [number, number] => [
    Math.min(...rounds.map(pick)),
    Math.max(...rounds.map(pick)),
  ];
  const byName: Record<string, number> = {};
  for (const name of new Set(rounds.flatMap((r) => Object.keys(r.commandsByName ?? {})))) {
    byName[name] = med((r) => r.commandsByName?.[name] ?? 0)!;
  }
  return {
    workload,
    messages: med((r) => r.messages)!,
    stored: med((r) => r.stored)!,
    seconds: med((r) => r.seconds)!,
    storedPerSec: med((r) => r.storedPerSec)!,
    p50Ms: med((r) => r.p50Ms)!,
    p99Ms: med((r) => r.p99Ms)!,
    firstP50Ms: med((r) => r.firstP50Ms),
    firstP99Ms: med((r) => r.firstP99Ms),
    serverCpuMsPerMessage: med((r) => r.serverCpuMsPerMessage)!,
    ferretCpuMsPerMessage: med((r) => r.ferretCpuMsPerMessage)!,
    loadgenCpuMsPerMessage: med((r) => r.loadgenCpuMsPerMessage)!,
    commandsPerMessage: med((r) => r.commandsPerMessage),
    commandsByName: rounds.some((r) => r.commandsByName) ? byName : undefined,
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    storedPerSecRange: range((r) => r.storedPerSec),
    p99Range: range((r) => r.p99Ms),
  };
}

/** One insertOne per message from the bare driver: the database's own ceiling for that pattern. */
async function baseline(opts: Options, mongo: MongoClient, ferret: EmbeddedDatabase): Promise<WriteResult> {
  const coll = mongo.db(`baseline_${randomBytes(3).toString('hex')}`).collection('messages');
  await coll.insertOne({ _id: 'warm' } as never);
  const latencies: number[] = [];
  const ferretCpu0 = cpuSeconds(ferret.process!.pid!);
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: opts.senders }, async (_, k) => {
      for (let i = 0; i < opts.per; i++) {
        const start = nowMs();
        await coll.insertOne({
          _id: `lobby:${k}:${i}`,
          conversation: 'lobby',
          text: `baseline ${k}-${i}`,
          createdAt: new Date(),
        } as never);
        latencies.push(nowMs() - start);
      }
    }),
  );
  const seconds = (nowMs() - t0) / 1000;
  const messages = opts.senders * opts.per;
  const cpu = process.cpuUsage(cpu0);
  const result: WriteResult = {
    workload: 'bare driver, insertOne per message',
    messages,
    stored: messages,
    seconds,
    storedPerSec: messages / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    serverCpuMsPerMessage: (cpu.user + cpu.system) / 1000 / messages,
    ferretCpuMsPerMessage: ((cpuSeconds(ferret.process!.pid!) - ferretCpu0) * 1000) / messages,
    loadgenCpuMsPerMessage: (cpu.user + cpu.system) / 1000 / messages,
    commandsPerMessage: 1,
    errors: 0,
  };
  console.log(`  baseline: ${JSON.stringify(result)}`);
  return result;
}

/**
 * Waits until FerretDB has been idle (under 5 % of a core) for 2 s, at most 120 s; returns
 * the seconds waited. Right after a bulk load it keeps working for tens of seconds (Go's
 * garbage collector and SQLite's checkpoint of the load), and lookups meanwhile take
 * 10-50 ms at p99: that measures the load, not a database with that much stored.
 */
async function settle(ferretPid: number): Promise<number> {
  const t0 = nowMs();
  let quiet = 0;
  while (quiet < 4 && nowMs() - t0 < 120000) {
    const c0 = cpuSeconds(ferretPid);
    await new Promise((r) => setTimeout(r, 500));
    quiet = cpuSeconds(ferretPid) - c0 < 0.025 ? quiet + 1 : 0;
  }
  return (nowMs() - t0) / 1000;
}

async function history(opts: Options, server: Server, mongo: MongoClient, ferretPid: number) {
  const me = await identity(server.http);
  const coll = mongo.db(server.dbName).collection('messages');
  const out: Array<{
    stored: number;
    p50Ms: number;
    p99Ms: number;
    lookupP50Ms: number;
    lookupP99Ms: number;
    commandsPerRequest?: number;
    settledSeconds: number;
  }> = [];
  let stored = await coll.countDocuments({ conversation: 'lobby' });
  for (const size of opts.history) {
    while (stored < size) {
      const n = Math.min(10000, size - stored);
      const docs = Array.from({ length: n }, (_, i) => {
        const seq = stored + i + 1;
        return {
          _id: `lobby:${String(seq).padStart(12, '0')}`,
          conversation: 'lobby',
          seq,
          text: `history ${seq}`,
          sender: me.id,
          recipient: null,
          clientId: null,
          createdAt: new Date(),
          readAt: null,
        };
      });
      await coll.insertMany(docs as never[], { ordered: false });
      stored += n;
      if (stored % 100000 === 0) console.log(`  seeded ${stored}`);
    }
    const settledSeconds = await settle(ferretPid);
    const query = async () => {
      const s = nowMs();
      const r = await post(server.http, me.cookie, HISTORY);
      const edges = (r.body.data?.messages as { edges: Array<{ node: { id: string } }> } | undefined)?.edges ?? [];
      if (edges.length !== 50 || edges[49].node.id !== `lobby:${String(size).padStart(12, '0')}`) {
        throw new Error(`wrong page with ${size} stored: ${JSON.stringify(r.body).slice(0, 300)}`);
      }
      return nowMs() - s;
    };
    // The one command a warm request sends (the head check: is there a message after the
    // newest known?), timed from the bare driver: how much of a request is the database's.
    const lookup = async () => {
      const s = nowMs();
      await coll.findOne({ _id: `lobby:${String(size + 1).padStart(12, '0')}` } as never);
      return nowMs() - s;
    };
    for (let i = 0; i < 20; i++) await query();
    const c0 = await commandsTotal(server);
    const samples: number[] = [];
    const lookups: number[] = [];
    for (let i = 0; i < opts.historyRequests; i++) {
      samples.push(await query());
      lookups.push(await lookup());
    }
    const c1 = await commandsTotal(server);
    const row = {
      stored: size,
      p50Ms: quantile(samples, 0.5),
      p99Ms: quantile(samples, 0.99),
      lookupP50Ms: quantile(lookups, 0.5),
      lookupP99Ms: quantile(lookups, 0.99),
      // Minus the metrics scrape itself, which sends none.
      commandsPerRequest: c0 !== undefined && c1 !== undefined ? (c1 - c0) / samples.length : undefined,
      settledSeconds,
    };
    console.log(`  messages(last: 50) with ${size} stored: ${JSON.stringify(row)}`);
    out.push(row);
  }
  return out;
}

const f = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
const bracket = (r: [number, number] | undefined, d: number) => (r ? ` (${f(r[0], d)}–${f(r[1], d)})` : '');

export async function main(): Promise<void> {
  const opts = parseOptions();
  const dbDir = mkdtempSync(path.join(tmpdir(), 'anonymo-bench-writes-db-'));
  let ferret: EmbeddedDatabase | undefined;
  let mongo: MongoClient | undefined;
  const results: WriteResult[] = [];
  let hist: Awaited<ReturnType<typeof history>> = [];
  console.log(
    `write benchmark: ${opts.server}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  try {
    ferret = await startFerretDB({
      dataDir: dbDir,
      dbName: 'unused',
      ferretdbBin: path.join(ROOT, '.tools', 'bin', 'ferretdb'),
    });
    const base = ferret.uri.replace(/unused$/, '');
    mongo = await MongoClient.connect(base, { maxPoolSize: opts.senders });
    const bareRounds: WriteResult[] = [];
    for (let round = 0; round < opts.rounds; round++) bareRounds.push(await baseline(opts, mongo, ferret));
    results.push(medianOf(bareRounds[0].workload, bareRounds));
    for (const [key, name, transport, direct] of [
      ['http-floor', 'HTTP, lobby, on the stack alone (no storage or checks: the floor)', 'http', false],
      ['http-lobby', 'HTTP, lobby', 'http', false],
      ['http-dm', 'HTTP, DM each to its own partner', 'http', true],
      ['ws-lobby', 'WebSocket, lobby', 'ws', false],
      ['ws-dm', 'WebSocket, DM each to its own partner', 'ws', true],
    ] as const) {
      if (opts.only && !opts.only.has(key)) continue;
      // One directory per workload: the profile's file name only tells servers apart by time.
      const profile = opts.profile && path.join(opts.profile, key);
      const server =
        key === 'http-floor'
          ? await startFloor(base, profile, opts.nodeArgs)
          : await startServer(opts.server, base, profile, opts.nodeArgs);
      try {
        for (let round = 0; round < opts.warmup; round++) {
          const r = await workload(`${name} (warm-up ${round + 1})`, opts, server, ferret, mongo, transport, direct);
          if (round === 0) results.push({ ...r, workload: `${name}, cold server (first round)` });
        }
        const measured: WriteResult[] = [];
        for (let round = 0; round < opts.rounds; round++) {
          measured.push(await workload(`${name} (round ${round + 1})`, opts, server, ferret, mongo, transport, direct));
        }
        results.push(medianOf(name, measured));
      } finally {
        await server.stop();
      }
    }
    if (opts.history.length) {
      const server = await startServer(
        opts.server,
        base,
        opts.profile && path.join(opts.profile, 'history'),
        opts.nodeArgs,
      );
      try {
        hist = await history(opts, server, mongo, ferret.process!.pid!);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await mongo?.close();
    await ferret?.stop();
    rmSync(dbDir, { recursive: true, force: true });
  }
  const bare = results[0].storedPerSec;
  const lines = [
    `${opts.senders} concurrent senders × ${opts.per} messages (server ${path.relative(ROOT, opts.server)}, node ${(opts.nodeArgs ?? SERVER_NODE_ARGS).join(' ')})`,
    '',
    `Each row: the median of ${opts.rounds} measured rounds (lowest–highest in brackets), after ${opts.warmup} warm-up round(s) on the same server; the cold rows are the first warm-up round.`,
    '',
    '| workload | stored msg/s | × bare driver | p50 ms | p99 ms | first message p50 / p99 ms | server CPU ms/msg | FerretDB CPU ms/msg | load generator CPU ms/msg | DB commands/msg | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.workload} | ${f(r.storedPerSec)}${bracket(r.storedPerSecRange, 0)} | ${f(r.storedPerSec / bare, 2)} | ${f(r.p50Ms, 1)} | ${f(r.p99Ms, 1)}${bracket(r.p99Range, 0)} | ${f(r.firstP50Ms)} / ${f(r.firstP99Ms)} | ${f(r.serverCpuMsPerMessage, 2)} | ${f(r.ferretCpuMsPerMessage, 2)} | ${f(r.loadgenCpuMsPerMessage, 2)} | ${f(r.commandsPerMessage, 2)} | ${r.errors} |`,
    ),
    '',
    'DB commands per message by name:',
    ...results.filter((r) => r.commandsByName).map((r) => `- ${r.workload}: ${JSON.stringify(r.commandsByName)}`),
    '',
    '| messages(last: 50) | p50 ms | p99 ms | DB commands/request | its `_id` lookup from the bare driver, p50 / p99 ms | FerretDB settled after seeding in |',
    '|---|---:|---:|---:|---:|---:|',
    ...hist.map(
      (h) =>
        `| ${h.stored} stored | ${f(h.p50Ms, 1)} | ${f(h.p99Ms, 1)} | ${f(h.commandsPerRequest, 2)} | ${f(h.lookupP50Ms, 1)} / ${f(h.lookupP99Ms, 1)} | ${f(h.settledSeconds, 1)} s |`,
    ),
  ];
  mkdirSync(opts.out, { recursive: true });
  writeFileSync(path.join(opts.out, 'writes.json'), JSON.stringify({ options: opts, results, history: hist }, null, 2));
  writeFileSync(path.join(opts.out, 'writes.md'), `${lines.join('\n')}\n`);
  console.log(`\n${lines.join('\n')}\n`);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
