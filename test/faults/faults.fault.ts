/**
 * The fault suite (`npm run test:faults`): a real server process and a real FerretDB, many
 * concurrent clients that send with clientId retries and resubscribe with `after`, while the
 * server is killed and restarted and the database is killed and restarted. At the end every
 * acknowledged message must be stored exactly once, and every subscriber must have received
 * every message of its conversations exactly once, in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startFerretDB, type EmbeddedDatabase } from '../../src/db/embedded';
import { openDb } from '../helpers/db';
import { startServerProcess, type ServerProcess } from '../helpers/process';
import { TEST_SECRET } from '../helpers/server';
import { freePort } from '../helpers/net';

const CLIENTS = Number(process.env.FAULT_CLIENTS ?? 60);
const DM_PAIRS = Number(process.env.FAULT_DM_PAIRS ?? 10);
const RUN_MS = Number(process.env.FAULT_RUN_MS ?? 24000);
const SERVER_KILLS = 3;
const DB_KILLS = 2;

const SEND = 'mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const ADDED = 'subscription($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id } }';
const FIRST = Buffer.from('m0').toString('base64url');

jest.setTimeout(RUN_MS + 240000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const counts = {
  sent: 0,
  acknowledged: 0,
  retried: 0,
  delivered: 0,
  lost: 0,
  duplicated: 0,
  outOfOrder: 0,
  resubscribed: 0,
};

/** One simulated browser: an identity, a lobby subscription and maybe a DM subscription. */
class SimClient {
  cookie?: string;
  id?: string;
  peer?: SimClient;
  /** Per conversation key ('lobby' or peer id): ids received, in order. */
  readonly received = new Map<string, string[]>();
  readonly acknowledged: string[] = [];
  private ws?: Client;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly url: () => string,
    private readonly wsUrl: () => string,
  ) {}

  private async http(body: unknown): Promise<{ data?: any; errors?: any[] } | null> {
    try {
      const res = await fetch(this.url(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.cookie ? { cookie: this.cookie } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(8000),
      });
      const sc = res.headers.get('set-cookie');
      const m = sc ? /anonymo\.sid=([^;]+)/.exec(sc) : null;
      if (m) this.cookie = `anonymo.sid=${m[1]}`;
      return (await res.json()) as { data?: any; errors?: any[] };
    } catch {
      return null; // server down, connection reset, timeout: not acknowledged
    }
  }

  async identify(): Promise<void> {
    for (;;) {
      const r = await this.http({ query: '{ me { id } }' });
      if (r?.data?.me) {
        this.id = r.data.me.id;
        return;
      }
      await sleep(200);
    }
  }

  /** Sends one message, retrying with the same clientId until the server acknowledges it. */
  async send(text: string, clientId: string, to?: string): Promise<void> {
    counts.sent++;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) counts.retried++;
      const r = await this.http({ query: SEND, variables: { input: { text, clientId, to } } });
      if (r?.data?.sendMessage?.id) {
        counts.acknowledged++;
        this.acknowledged.push(clientId);
        return;
      }
      await sleep(Math.min(1000, 100 * (attempt + 1)));
    }
  }

  /** Subscribes to the lobby and its DM; on any drop, resubscribes with the last id seen. */
  listen(): void {
    const socketWith = this.cookie;
    class CookieSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: socketWith ? { cookie: socketWith } : {} });
      }
    }
    this.ws = createClient({
      url: this.wsUrl(),
      webSocketImpl: CookieSocket,
      retryAttempts: Infinity,
      retryWait: async () => {
        await sleep(200 + Math.random() * 300);
      },
      shouldRetry: () => true,
      lazy: false,
      onNonLazyError: () => undefined,
    });
    this.subscribe('lobby', undefined);
    if (this.peer) this.subscribe(this.peer.id!, this.peer.id);
  }

  private subscribe(key: string, withId: string | undefined): void {
    const got = this.received.get(key) ?? [];
    this.received.set(key, got);
    // graphql-ws re-sends this same payload object when it reconnects, so keeping `after`
    // current in it is all a resubscription needs (the documented client pattern).
    const variables: { with?: string; after: string } = { with: withId, after: got[got.length - 1] ?? FIRST };
    this.ws!.subscribe<{ messageAdded: { id: string } }>(
      { query: ADDED, variables },
      {
        next: ({ data }) => {
          if (!data) return;
          got.push(data.messageAdded.id);
          variables.after = data.messageAdded.id;
        },
        // A subscription that failed (e.g. the database was away while it started) is not
        // retried by graphql-ws: start it again from where it got to.
        error: () => {
          if (this.stopped) return;
          counts.resubscribed++;
          setTimeout(() => !this.stopped && this.subscribe(key, withId), 300);
        },
        complete: () => {
          if (this.stopped) return;
          counts.resubscribed++;
          setTimeout(() => !this.stopped && this.subscribe(key, withId), 300);
        },
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.ws?.dispose();
  }
}

test('no acknowledged message is lost or duplicated through server and database kills', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anonymo-faults-'));
  const serverPort = await freePort();
  let db: EmbeddedDatabase = await startFerretDB({ dataDir, dbName: 'anonymo' });
  const env = {
    MONGODB_URI: db.uri,
    SESSION_SECRET: TEST_SECRET,
    PORT: String(serverPort),
    DB_TIMEOUT_MS: '1500',
    PRESENCE_GRACE_MS: '500',
    RATE_LIMITS: 'off',
    MAX_CONNECTIONS: '100000',
  };
  let server: ServerProcess = await startServerProcess(env);
  const url = () => `http://127.0.0.1:${serverPort}/graphql`;
  const wsUrl = () => `ws://127.0.0.1:${serverPort}/graphql`;

  const clients = Array.from({ length: CLIENTS }, (_, i) => new SimClient(`c${i}`, url, wsUrl));
  await Promise.all(clients.map((c) => c.identify()));
  for (let p = 0; p < DM_PAIRS; p++) {
    const [a, b] = [clients[2 * p], clients[2 * p + 1]];
    a.peer = b;
    b.peer = a;
  }
  clients.forEach((c) => c.listen());
  await sleep(1000);

  const events: string[] = [];
  let running = true;
  const start = Date.now();
  const faults = (async () => {
    // Alternate server and database kills across the run.
    const plan: Array<'server' | 'db'> = ['server', 'db', 'server', 'db', 'server'];
    const gap = RUN_MS / (plan.length + 1);
    for (const what of plan) {
      await sleep(gap);
      if (what === 'server') {
        server.child.kill('SIGKILL');
        await server.exited;
        events.push(`${Date.now() - start}ms server killed`);
        await sleep(800);
        server = await startServerProcess(env);
        events.push(`${Date.now() - start}ms server restarted`);
      } else {
        db.process!.kill('SIGKILL');
        await new Promise((r) => db.process!.once('exit', r));
        events.push(`${Date.now() - start}ms database killed`);
        await sleep(1500);
        db = await startFerretDB({ dataDir, dbName: 'anonymo' });
        events.push(`${Date.now() - start}ms database restarted`);
      }
    }
  })();
  const load = clients.map(async (c, k) => {
    for (let i = 0; running; i++) {
      const toPeer = c.peer && i % 3 === 0;
      await c.send(`msg ${c.name}-${i}`, `${c.name}-${i}`, toPeer ? c.peer!.id : undefined);
      await sleep(150 + Math.random() * 250);
      if (Date.now() - start > RUN_MS) break;
    }
    void k;
  });
  await faults;
  running = false;
  await Promise.all(load);

  // Let every subscriber catch up: wait until nothing changes for a while.
  const { db: direct, close } = await openDb(db.uri);
  try {
    const stored = await direct
      .collection<{ _id: string; conversation: string; seq: number; clientId: string; sender: string }>('messages')
      .find({}, { projection: { conversation: 1, seq: 1, clientId: 1, sender: 1 } })
      .toArray();
    const byConversation = new Map<string, string[]>();
    for (const m of stored.sort((x, y) => x.seq - y.seq)) {
      const list = byConversation.get(m.conversation) ?? [];
      list.push(m._id);
      byConversation.set(m.conversation, list);
    }
    const convKey = (c: SimClient, key: string) => (key === 'lobby' ? 'lobby' : `dm:${[c.id!, key].sort().join(':')}`);
    const deadline = Date.now() + 60000;
    for (;;) {
      const complete = clients.every((c) =>
        [...c.received].every(([key, got]) => got.length >= (byConversation.get(convKey(c, key))?.length ?? 0)),
      );
      if (complete || Date.now() > deadline) break;
      await sleep(500);
    }

    // Every acknowledged message is stored exactly once.
    const storedIds = stored.map((m) => `${m.sender}:${m.clientId}`);
    expect(new Set(storedIds).size).toBe(storedIds.length);
    let missingInDb = 0;
    const storedSet = new Set(stored.map((m) => m.clientId));
    for (const c of clients) for (const id of c.acknowledged) if (!storedSet.has(id)) missingInDb++;

    // Every subscriber received every message of its conversations exactly once, in order.
    for (const c of clients) {
      for (const [key, got] of c.received) {
        const expected = byConversation.get(convKey(c, key)) ?? [];
        const seen = new Set<string>();
        for (const id of got) {
          if (seen.has(id)) counts.duplicated++;
          seen.add(id);
        }
        for (const id of expected) if (!seen.has(id)) counts.lost++;
        counts.delivered += got.length;
        const unique = got.filter((id, i) => got.indexOf(id) === i);
        if (unique.join() !== expected.filter((id) => seen.has(id)).join()) counts.outOfOrder++;
      }
    }
    const summary = {
      clients: CLIENTS,
      dmPairs: DM_PAIRS,
      serverKills: SERVER_KILLS,
      databaseKills: DB_KILLS,
      stored: stored.length,
      ...counts,
      acknowledgedMissingInDb: missingInDb,
    };
    console.log(`fault suite\n${events.join('\n')}\n${JSON.stringify(summary, null, 2)}`);
    expect(events.filter((e) => e.endsWith('server killed'))).toHaveLength(SERVER_KILLS);
    expect(events.filter((e) => e.endsWith('database killed'))).toHaveLength(DB_KILLS);
    expect(counts.acknowledged).toBe(counts.sent);
    expect(missingInDb).toBe(0);
    expect(counts.lost).toBe(0);
    expect(counts.duplicated).toBe(0);
    expect(counts.outOfOrder).toBe(0);
    expect(counts.retried).toBeGreaterThan(0); // the faults really hit the clients
  } finally {
    await close();
    await Promise.all(clients.map((c) => c.stop()));
    server.child.kill('SIGTERM');
    await server.exited;
    await db.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
