/**
 * The WebSocket transport runs graphql-ws's protocol (`makeServer`) through its own ws adapter
 * (src/transport/graphql-ws-server.ts) instead of graphql-ws's `useServer`. These drive it with
 * graphql-ws's own client: ping/pong, results, complete, errors, close codes, reconnects.
 */
import type { GraphQLFormattedError } from 'graphql';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const SEND = 'mutation ($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const LOBBY = 'subscription { messageAdded { id text } }';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

const until = (check: () => boolean) => waitFor(check, { timeout: 15000 });
const subscribers = () => server.services.realtime.stats().subscribers;

async function browser(): Promise<TestClient> {
  const c = new TestClient(server);
  await c.me();
  return c;
}

test("graphql-ws's client gets a pong for each ping it sends", async () => {
  const pongs: unknown[] = [];
  // (Its own `on` replaces the helper's, so this waits for pongs, not for `connected`.)
  const ws = (await browser()).ws({ keepAlive: 50, on: { pong: (received) => received && pongs.push(received) } });
  await until(() => pongs.length >= 2);
  await ws.close();
});

test('a subscription receives results, and completing it on the client ends it on the server', async () => {
  const c = await browser();
  const ws = c.ws();
  await ws.connected();
  const before = subscribers();
  const received: string[] = [];
  let completed = false;
  const stop = ws.client.subscribe<{ messageAdded: { text: string } }>(
    { query: LOBBY },
    {
      next: (r) => r.data && received.push(r.data.messageAdded.text),
      error: (e) => {
        throw new Error(`unexpected error ${JSON.stringify(e)}`);
      },
      complete: () => (completed = true),
    },
  );
  await until(() => subscribers() === before + 1);
  await c.data(SEND, { input: { text: 'through the adapter' } });
  await until(() => received.includes('through the adapter'));
  stop();
  await until(() => subscribers() === before);
  expect(completed).toBe(true);
  // The connection itself stays usable.
  expect((await ws.query<{ me: { id: string } }>('{ me { id } }')).data?.me.id).toEqual(expect.any(String));
  await ws.close();
});

test('an operation the server refuses gets an error message with a code, and the socket stays open', async () => {
  const ws = (await browser()).ws();
  await ws.connected();
  const errors = await new Promise<readonly GraphQLFormattedError[]>((resolve, reject) =>
    ws.client.subscribe(
      { query: 'subscription { noSuchField }' },
      { next: () => undefined, error: (e) => (Array.isArray(e) ? resolve(e) : reject(e)), complete: () => undefined },
    ),
  );
  expect(errors[0].extensions?.code).toEqual(expect.any(String));
  expect(ws.closes).toEqual([]);
  expect((await ws.query<{ me: { id: string } }>('{ me { id } }')).data?.me.id).toEqual(expect.any(String));
  await ws.close();
});

test('a second connection_init closes the socket with 4429, as graphql-ws specifies', async () => {
  const ws = (await browser()).ws();
  await ws.connected();
  ws.sockets[0].send(JSON.stringify({ type: 'connection_init' }));
  await until(() => ws.closes.length > 0);
  expect(ws.closes[0].code).toBe(4429);
  await ws.close();
});

test('after the connection drops, the client reconnects and its subscription resumes on the server', async () => {
  const c = await browser();
  const ws = c.ws({ retryAttempts: 5, retryWait: () => Promise.resolve(), shouldRetry: () => true });
  await ws.connected();
  const before = subscribers();
  const connectionsBefore = server.stats().connections;
  const received: string[] = [];
  ws.client.subscribe<{ messageAdded: { text: string } }>(
    { query: LOBBY },
    {
      next: (r) => r.data && received.push(r.data.messageAdded.text),
      error: () => undefined,
      complete: () => undefined,
    },
  );
  await until(() => subscribers() === before + 1);
  ws.sockets[0].terminate(); // no close frame: an abnormal closure (1006) for the client
  await ws.connected(15000, 2);
  await until(
    () => ws.sockets.length === 2 && subscribers() === before + 1 && server.stats().connections === connectionsBefore,
  );
  await c.data(SEND, { input: { text: 'after the reconnect' } });
  await until(() => received.includes('after the reconnect'));
  await ws.close();
  await until(() => subscribers() === before && server.stats().connections === connectionsBefore - 1);
});
