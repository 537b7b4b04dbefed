/** WebSocket access below graphql-ws: upgrade answers, raw frames and close codes. */
import type { IncomingHttpHeaders } from 'node:http';
import WebSocket from 'ws';

export interface UpgradeResult {
  /** 101 when the WebSocket opened, else the HTTP status of the refusal. */
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ws?: WebSocket;
}

/** Attempts an upgrade with these headers; resolves with the socket or the refusal. */
export function upgrade(
  url: string,
  headers: Record<string, string> = {},
  protocol: string | null = 'graphql-transport-ws',
): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol === null ? [] : protocol, { headers });
    ws.once('upgrade', (res) => {
      ws.once('open', () => resolve({ status: 101, headers: res.headers, body: '', ws }));
    });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        req.destroy();
      });
    });
    // Rejects only while nothing was settled (a later error belongs to the caller's socket).
    ws.on('error', reject);
    ws.once('open', () => ws.off('error', reject));
  });
}

/** A graphql-ws conversation over a raw socket: send frames, collect messages, await the close. */
export class RawSocket {
  readonly messages: Array<Record<string, unknown>> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      try {
        this.messages.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>);
      } catch {
        this.messages.push({ unparsable: (data as Buffer).toString() });
      }
      this.wake();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.wake();
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<RawSocket> {
    const r = await upgrade(url, headers);
    if (!r.ws) throw new Error(`upgrade refused with ${r.status}: ${r.body}`);
    return new RawSocket(r.ws);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  json(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Sends connection_init and waits for the ack. */
  async init(): Promise<void> {
    this.json({ type: 'connection_init' });
    await this.next((m) => m.type === 'connection_ack');
  }

  /** Waits for a message matching `pred` (received before or after the call). */
  async next(pred: (m: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(pred);
      if (found) return found;
      if (this.ws.readyState === WebSocket.CLOSED)
        throw new Error(`socket closed; got ${JSON.stringify(this.messages)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves with the close, or rejects if the socket stays open for `timeoutMs`. */
  async closeCode(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`socket still open; got ${JSON.stringify(this.messages)}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(1000);
    await this.closed;
  }
}

/** Document counts of the collections a request could write to. */
export async function countDocuments(db: import('mongodb').Db): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of ['users', 'messages', 'sessions']) out[name] = await db.collection(name).countDocuments();
  return out;
}
