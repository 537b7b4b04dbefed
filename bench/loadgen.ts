/**
 * A load-generator worker (a child process of bench/run.ts, so it never shares the
 * server's event loop): opens subscribed WebSockets, timestamps every delivery and reports
 * to the coordinator over IPC.
 *
 * Messages carry their send time in their text (`b:<index>:<epoch ms>`), so a delivery's
 * latency is read from the frame without parsing the JSON.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { nowMs } from './stats';

export type ToWorker =
  | {
      type: 'connect';
      url: string;
      protocol: Protocol;
      cookies: string[];
      count: number;
      query: string;
      /** Variables of socket i: `variables[i % length]` (room subscriptions); default none. */
      variables?: Array<Record<string, unknown>>;
      concurrency: number;
    }
  | { type: 'record'; on: boolean }
  | { type: 'report' }
  /** Closes every socket (the server sees them go) and keeps the worker for the next round. */
  | { type: 'drop' }
  | { type: 'close' };

export type FromWorker =
  | { type: 'connected'; open: number; failed: number; firstError?: string }
  | { type: 'done'; k: number }
  | {
      type: 'report';
      latencies: number[];
      delivered: number;
      unexpected: number;
      closed: number;
      /** nowMs() of the last frame of any kind received (0: none yet). */
      lastFrameAt: number;
    }
  | { type: 'dropped' };

/** graphql-transport-ws; the raw ws broadcast's one-line hello; Socket.IO's Engine.IO v4 over WebSocket. */
export type Protocol = 'graphql' | 'raw' | 'socketio';

const MARK = Buffer.from('"text":"b:');
let sockets: WebSocket[] = [];
const counts = new Map<number, number>();
let latencies: number[] = [];
let recording = false;
let delivered = 0;
let unexpected = 0;
let closed = 0;
let closing = false;
let lastFrameAt = 0;

const send = (m: FromWorker) => process.send!(m);

function onFrame(data: Buffer): void {
  const now = nowMs();
  lastFrameAt = now;
  const i = data.indexOf(MARK);
  if (i < 0) {
    unexpected++;
    return;
  }
  let p = i + MARK.length;
  let k = 0;
  while (data[p] !== 58 /* : */) k = k * 10 + (data[p++] - 48);
  const end = data.indexOf(34 /* " */, ++p);
  const t0 = Number(data.toString('latin1', p, end));
  if (recording) latencies.push(now - t0);
  delivered++;
  const c = (counts.get(k) ?? 0) + 1;
  if (c === sockets.length) {
    counts.delete(k);
    send({ type: 'done', k });
  } else counts.set(k, c);
}

/** Socket.IO frames: `42[...]` events, and heartbeat pings (`2`) that must be answered (`3`). */
function onSocketIoFrame(this: WebSocket, data: Buffer): void {
  if (data.length === 1 && data[0] === 50 /* 2 */) return void this.send('3');
  onFrame(data);
}

function open(
  url: string,
  protocol: Protocol,
  cookie: string | undefined,
  query: string,
  variables?: Record<string, unknown>,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const target = protocol === 'socketio' ? url.replace(/\/graphql$/, '/socket.io/?EIO=4&transport=websocket') : url;
    const ws = new WebSocket(target, protocol === 'graphql' ? 'graphql-transport-ws' : undefined, {
      headers: cookie ? { cookie } : {},
      perMessageDeflate: false,
    });
    let ready = false;
    ws.once('error', (err) => {
      if (!ready) reject(err);
    });
    ws.on('close', () => {
      if (!closing) closed++;
      if (!ready) reject(new Error('closed before subscribing'));
    });
    ws.once('open', () => {
      if (protocol === 'socketio') {
        // Engine.IO open packet (`0{...}`), then the namespace connect (`40`) and its ack.
        ws.on('message', function hello(data: Buffer) {
          const text = data.toString();
          if (text.startsWith('0{')) return void ws.send('40');
          if (!text.startsWith('40')) return reject(new Error(`no Socket.IO connect: ${text}`));
          ws.off('message', hello);
          ready = true;
          ws.on('message', onSocketIoFrame);
          resolve(ws);
        });
        return;
      }
      if (protocol === 'raw') {
        ws.send(JSON.stringify({ id: randomUUID() }));
        ready = true;
        ws.on('message', onFrame);
        return resolve(ws);
      }
      ws.send(JSON.stringify({ type: 'connection_init' }));
      ws.once('message', (ack) => {
        const text = (ack as Buffer).toString();
        if (!text.includes('connection_ack')) return reject(new Error(`no ack: ${text}`));
        ws.send(JSON.stringify({ id: randomUUID(), type: 'subscribe', payload: { query, variables } }));
        ready = true;
        ws.on('message', onFrame);
        resolve(ws);
      });
    });
  });
}

process.on('message', (m: ToWorker) => void onMessage(m));

async function onMessage(m: ToWorker): Promise<void> {
  if (m.type === 'connect') {
    let next = 0;
    let failed = 0;
    let firstError: string | undefined;
    const runner = async () => {
      while (next < m.count) {
        const i = next++;
        try {
          const vars = m.variables?.length ? m.variables[i % m.variables.length] : undefined;
          sockets.push(await open(m.url, m.protocol, m.cookies[i % m.cookies.length], m.query, vars));
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(m.concurrency, m.count) }, runner));
    send({ type: 'connected', open: sockets.length, failed, firstError });
  } else if (m.type === 'record') {
    recording = m.on;
    if (m.on) latencies = [];
  } else if (m.type === 'report') {
    send({ type: 'report', latencies, delivered, unexpected, closed, lastFrameAt });
    latencies = [];
  } else if (m.type === 'drop') {
    closing = true;
    const gone = sockets.map(
      (s) => new Promise((r) => (s.readyState === WebSocket.CLOSED ? r(null) : s.once('close', r))),
    );
    for (const s of sockets) s.close(1000);
    await Promise.all(gone);
    sockets = [];
    counts.clear();
    closing = false;
    send({ type: 'dropped' });
  } else if (m.type === 'close') {
    closing = true;
    for (const s of sockets) s.terminate();
    setTimeout(() => process.exit(0), 100);
  }
}
