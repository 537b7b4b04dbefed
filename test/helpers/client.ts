/**
 * Clients that talk to a real server as browsers and apps do: HTTP with a cookie jar, and
 * graphql-ws over a real WebSocket that sends (and learns) the same session cookie.
 */
import type { IncomingMessage } from 'node:http';
import type { GraphQLFormattedError } from 'graphql';
import { createClient, type Client, type ClientOptions } from 'graphql-ws';
import WebSocket from 'ws';

export interface GqlResult<T> {
  status: number;
  data?: T;
  errors?: GraphQLFormattedError[];
  headers: Headers;
}

export interface Endpoint {
  url: string;
  wsUrl: string;
}

/** One "browser": a cookie jar shared by its HTTP requests and WebSockets. */
export class TestClient {
  cookie?: string;

  constructor(
    readonly server: Endpoint,
    readonly options: { origin?: string; headers?: Record<string, string> } = {},
  ) {}

  private remember(setCookie: string | null | undefined): void {
    const m = setCookie ? /anonymo\.sid=([^;]+)/.exec(setCookie) : null;
    if (m) this.cookie = `anonymo.sid=${m[1]}`;
  }

  /** POSTs any body (for malformed-request tests). */
  async post(
    body: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string; headers: Headers }> {
    const res = await fetch(this.server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(this.options.origin ? { origin: this.options.origin } : {}),
        ...this.options.headers,
        ...headers,
      },
      body,
    });
    this.remember(res.headers.get('set-cookie'));
    return { status: res.status, text: await res.text(), headers: res.headers };
  }

  async gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>> {
    const res = await this.post(JSON.stringify({ query, variables }));
    const body = JSON.parse(res.text) as { data?: T; errors?: GraphQLFormattedError[] };
    return { status: res.status, data: body.data, errors: body.errors, headers: res.headers };
  }

  /** The data of a successful operation; throws with the errors otherwise. */
  async data<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const r = await this.gql<T>(query, variables);
    if (r.errors?.length || !r.data) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
    return r.data;
  }

  /** The first error's code, asserting the operation failed. */
  async errorCode(query: string, variables?: Record<string, unknown>): Promise<string> {
    const r = await this.gql(query, variables);
    const code = r.errors?.[0]?.extensions?.code;
    if (typeof code !== 'string') throw new Error(`expected an error, got ${JSON.stringify(r)}`);
    return code;
  }

  async me(): Promise<{ id: string; username: string }> {
    return (await this.data<{ me: { id: string; username: string } }>('{ me { id username } }')).me;
  }

  /** A graphql-ws client on this browser's cookie. */
  ws(options: Partial<ClientOptions> = {}): WsTestClient {
    return new WsTestClient(this, options);
  }
}

/** A graphql-ws connection; records the cookie the 101 response sets. */
export class WsTestClient {
  readonly client: Client;
  readonly sockets: WebSocket[] = [];
  upgradeResponse?: IncomingMessage;
  /** Close events seen, in order. */
  readonly closes: Array<{ code: number; reason: string }> = [];
  private connectedCount = 0;
  private onConnected: Array<() => void> = [];

  constructor(
    readonly owner: TestClient,
    options: Partial<ClientOptions> = {},
  ) {
    const self = this;
    class CookieWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        const headers: Record<string, string> = {};
        if (owner.cookie) headers.cookie = owner.cookie;
        if (owner.options.origin) headers.origin = owner.options.origin;
        super(url, protocols, { headers });
        self.sockets.push(this);
        this.on('upgrade', (res) => {
          self.upgradeResponse = res;
          const sc = res.headers['set-cookie'];
          const m = sc ? /anonymo\.sid=([^;]+)/.exec(sc.join(';')) : null;
          if (m) owner.cookie = `anonymo.sid=${m[1]}`;
        });
      }
    }
    this.client = createClient({
      url: owner.server.wsUrl,
      webSocketImpl: CookieWebSocket,
      retryAttempts: 0,
      lazy: false,
      on: {
        closed: (e) =>
          this.closes.push({ code: (e as { code: number }).code, reason: (e as { reason: string }).reason }),
        connected: () => {
          this.connectedCount++;
          const waiting = this.onConnected;
          this.onConnected = [];
          waiting.forEach((f) => f());
        },
      },
      onNonLazyError: () => undefined,
      ...options,
    });
  }

  /** Resolves once the connection has been acknowledged `times` times (reconnects count). */
  connected(timeoutMs = 5000, times = 1): Promise<void> {
    if (this.connectedCount >= times) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('graphql-ws did not connect')), timeoutMs);
      const check = () => {
        if (this.connectedCount >= times) {
          clearTimeout(t);
          resolve();
        } else this.onConnected.push(check);
      };
      this.onConnected.push(check);
    });
  }

  subscribe<T = any>(query: string, variables?: Record<string, unknown>): Subscription<T> {
    return new Subscription<T>(this.client, query, variables);
  }

  async query<T = any>(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<{ data?: T; errors?: readonly GraphQLFormattedError[] }> {
    return new Promise((resolve, reject) => {
      let result: { data?: T; errors?: readonly GraphQLFormattedError[] } = {};
      this.client.subscribe<T>(
        { query, variables },
        {
          next: (v) => (result = { data: v.data ?? undefined, errors: v.errors }),
          error: (e) => (Array.isArray(e) ? resolve({ errors: e }) : reject(e)),
          complete: () => resolve(result),
        },
      );
    });
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }
}

/** A subscription whose results queue up for assertions. */
export class Subscription<T> {
  readonly items: T[] = [];
  errors?: unknown;
  completed = false;
  private waiters: Array<() => void> = [];
  private readonly stop: () => void;

  constructor(client: Client, query: string, variables?: Record<string, unknown>) {
    this.stop = client.subscribe<T>(
      { query, variables },
      {
        next: (v) => {
          if (v.errors) this.errors = v.errors;
          if (v.data) this.items.push(v.data);
          this.wake();
        },
        error: (e) => {
          this.errors = e;
          this.wake();
        },
        complete: () => {
          this.completed = true;
          this.wake();
        },
      },
    );
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** Waits until `pred` holds for the received items (or an error/completion arrives). */
  async waitFor(pred: (items: T[]) => boolean, timeoutMs = 5000, what = 'condition'): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.items)) {
      if (this.errors) throw new Error(`subscription error: ${JSON.stringify(this.errors)}`);
      if (this.completed) throw new Error(`subscription completed before ${what}; got ${JSON.stringify(this.items)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.items)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.items;
  }

  async waitForCount(n: number, timeoutMs = 5000): Promise<T[]> {
    return this.waitFor((items) => items.length >= n, timeoutMs, `${n} items`);
  }

  /** Resolves when the server ends the subscription (error or complete). */
  async ended(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.completed && !this.errors) {
      if (Date.now() > deadline) throw new Error('subscription did not end');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * A positive sync point for "nothing else arrives" checks: `mark` causes a marker event after
   * everything under test; once the marker is here, everything published before it on the same
   * channel has been delivered (channels deliver in order). Resolves with the items received
   * before the marker.
   */
  async before(mark: () => Promise<unknown>, isMarker: (item: T) => boolean, timeoutMs = 5000): Promise<T[]> {
    await mark();
    const items = await this.waitFor((got) => got.some(isMarker), timeoutMs, 'the marker');
    return items.slice(0, items.findIndex(isMarker));
  }

  unsubscribe(): void {
    this.stop();
  }
}
