/**
 * What every benchmark shares: the servers under test (Anonymo's dist/main.js and the
 * baselines: a bare ws broadcast and a Socket.IO broadcast), the load-generator workers
 * (bench/loadgen.ts) that hold the subscribed sockets, and the measuring phases.
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { FromWorker, Protocol, ToWorker } from './loadgen';
import { cpuSeconds, nowMs, quantile, rssBytes, sleep } from './stats';
import { freePort } from '../test/helpers/net';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BUILT = path.join(ROOT, 'dist', '.bench', 'bench');
export const MODES = ['raw', 'socketio', 'per-subscriber', 'grouped'] as const;
export type Mode = (typeof MODES)[number];
/** The modes that are not Anonymo: a bare ws broadcast (the ceiling) and a Socket.IO broadcast (the alternative). */
export const BASELINES: Record<string, string> = { raw: 'raw-server.js', socketio: 'socketio-server.js' };
export const isBaseline = (mode: Mode): boolean => mode in BASELINES;
export const protocolOf = (mode: Mode): Protocol =>
  mode === 'raw' ? 'raw' : mode === 'socketio' ? 'socketio' : 'graphql';

export const SUBSCRIPTION =
  'subscription Lobby { messageAdded { id text createdAt sender { id username avatarUrl } } }';
export const SEND = 'mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id } }';

/** A server under test: our dist/main.js or the raw ws broadcast. */
export interface Target {
  mode: Mode;
  pid: number;
  http: string;
  ws: string;
  child: ChildProcess;
  /** The server's database (not for raw). */
  dbName?: string;
  /** Its Prometheus endpoint (Anonymo only: a listener of its own, see METRICS_PORT). */
  metrics?: string;
  stop(): Promise<void>;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 12000);
  await exited;
  clearTimeout(t);
}

export async function startTarget(
  mode: Mode,
  mongoBase: string,
  subscribers: number,
  server: string,
  profile?: string,
  extraEnv: Record<string, string> = {},
  /** Node options of an Anonymo server; default those of `npm start` (a baseline build may differ). */
  nodeArgs: readonly string[] = SERVER_NODE_ARGS,
): Promise<Target> {
  if (isBaseline(mode)) {
    const child = spawn(process.execPath, [...GC_ARGS, path.join(BUILT, BASELINES[mode])], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (l) => {
        const m = /^READY (\d+)/.exec(l);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (c) => reject(new Error(`${mode} server exited with ${c}`)));
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
  const metricsPort = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anonymo-bench-'));
  const dbName = `bench_${mode.replace(/\W/g, '')}_${randomBytes(3).toString('hex')}`;
  const profileArgs = profile
    ? ['--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${mode}-${subscribers}-${Date.now()}.cpuprofile`]
    : [];
  const child = spawn(process.execPath, [...GC_ARGS, ...nodeArgs, ...profileArgs, server], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      SESSION_SECRET: randomBytes(24).toString('hex'),
      SESSION_COOKIE_SECURE: 'false',
      PORT: String(port),
      // Its own metrics port: the default one may be taken by another server on the machine.
      METRICS_PORT: String(metricsPort),
      HOST: '127.0.0.1',
      MONGODB_URI: `${mongoBase}${dbName}`,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      RATE_LIMITS: 'off',
      // Admission control for reconnect storms (bench/storm.ts measures it): a fan-out
      // benchmark connects thousands of sockets at once, as the baselines (which have none) do.
      WS_UPGRADE_RATE: '1000000',
      WS_UPGRADE_BURST: '1000000',
      MAX_CONNECTIONS: String(subscribers + 1000),
      FANOUT: mode,
      REDIS_URL: '',
      ...extraEnv,
    },
  });
  const http = `http://127.0.0.1:${port}/graphql`;
  const metrics = `http://127.0.0.1:${metricsPort}/metrics`;
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
    metrics,
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
    protocol: Protocol,
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

  /**
   * What the workers received since the last report (latencies) and in all (the counts).
   * Frames without a `b:` text are `unexpected` (e.g. messageUpdated events, see bench/lifecycle.ts).
   */
  async report(): Promise<{
    latencies: number[];
    delivered: number;
    unexpected: number;
    closed: number;
    lastFrameAt: number;
  }> {
    const rs = await Promise.all(this.procs.map((p) => this.ask(p, { type: 'report' }, 'report')));
    return {
      lastFrameAt: Math.max(0, ...rs.map((r) => r.lastFrameAt)),
      latencies: rs.flatMap((r) => r.latencies),
      delivered: rs.reduce((a, r) => a + r.delivered, 0),
      unexpected: rs.reduce((a, r) => a + r.unexpected, 0),
      closed: rs.reduce((a, r) => a + r.closed, 0),
    };
  }

  /** Closes every socket of every worker (a clean close each) and waits until they are gone. */
  async drop(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.ask(p, { type: 'drop' }, 'dropped')));
    this.opened.fill(0);
    this.active = 0;
    this.early.clear();
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
export function sender(target: Target, cookie: string | undefined): (k: number) => Promise<void> {
  return async (k) => {
    const text = `b:${k}:${nowMs().toFixed(3)}`;
    const body = isBaseline(target.mode)
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
export const IDLE_MS = 1000;
export const GC_ARGS = ['--expose-gc', '-r', path.join(BUILT, 'gc-preload.js')];

/**
 * The Node options `npm start` runs the server with (package.json's `start` script, e.g. its
 * young-generation size, docs/PERFORMANCE.md), so the benchmark measures the server as
 * deployed. The baselines run with Node's defaults, as their users would.
 */
export const SERVER_NODE_ARGS: string[] = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
).scripts.start
  .split(/\s+/)
  .filter((arg) => arg.startsWith('--'));

/** The server's RSS once idle and garbage-collected (see gc-preload.ts). */
export async function idleRss(pid: number): Promise<number> {
  await sleep(IDLE_MS);
  for (let i = 0; i < 2; i++) {
    process.kill(pid, 'SIGUSR2');
    await sleep(500);
  }
  return rssBytes(pid);
}

export const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);

export async function subscriptionsActive(target: Target): Promise<number> {
  if (!target.metrics) throw new Error(`${target.mode} has no metrics endpoint`);
  const text = await (await fetch(target.metrics)).text();
  const m = /^anonymo_subscriptions_active (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Sends until one message reached every socket (subscriptions attach asynchronously). */
export async function untilAllSubscribed(workers: Workers, send: (k: number) => Promise<void>, next: () => number) {
  const deadline = nowMs() + 60000;
  for (;;) {
    const kk = next();
    const done = workers.delivered(kk);
    await send(kk);
    if ((await withTimeout(done, 1000)) !== 'timeout') break;
    if (nowMs() > deadline) throw new Error('subscribers did not all receive a message within 60 s');
  }
  await sleep(500);
  await workers.report();
}

export interface RateResult {
  rate: number;
  messages: number;
  expected: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * `rate` messages/s for `seconds`, each to every one of `open` sockets; latency from the send
 * to each delivery. `tick` runs every 100 ms meanwhile (e.g. to sample the server's RSS).
 */
export async function ratePhase(
  workers: Workers,
  send: (k: number) => Promise<void>,
  next: () => number,
  { rate, seconds, open }: { rate: number; seconds: number; open: number },
  notes: string[],
  tick?: () => void,
): Promise<RateResult> {
  const timer = tick ? setInterval(tick, 100) : undefined;
  try {
    workers.record(true);
    const count = Math.max(1, Math.round(rate * seconds));
    const start = nowMs();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const wait = start + (i * 1000) / rate - nowMs();
      if (wait > 0) await sleep(wait);
      const kk = next();
      pending.push(workers.delivered(kk));
      send(kk).catch((err) => notes.push(String(err)));
    }
    if ((await withTimeout(Promise.all(pending), 60000)) === 'timeout')
      notes.push(`rate ${rate}: not every message reached every subscriber within 60 s`);
    workers.record(false);
    const rep = await workers.report();
    return {
      rate,
      messages: count,
      expected: count * open,
      delivered: rep.latencies.length,
      p50Ms: quantile(rep.latencies, 0.5),
      p99Ms: quantile(rep.latencies, 0.99),
      maxMs: quantile(rep.latencies, 1),
    };
  } finally {
    if (timer) clearInterval(timer);
  }
}
