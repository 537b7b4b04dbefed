/**
 * Leak check: thousands of subscriptions and connections opened and closed; the server's
 * bookkeeping, listeners and heap return to their baseline.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const CONNECTIONS = 1000;
const SUBSCRIPTIONS_PER_CONNECTION = 3;
const ROUNDS = 3;

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ env: { PRESENCE_GRACE_MS: '50', MAX_CONNECTIONS: '100000' } });
});
afterAll(async () => {
  await server.close();
});

function snapshot() {
  return {
    ...server.services.realtime.stats(),
    connections: server.stats().connections,
    presenceTracked: server.services.presence.trackedCount(),
    processListeners: process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0),
  };
}

async function heapMb(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    // Lets finalizers and callbacks freed by the collection run before the next pass.
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Opens a raw graphql-ws connection with a few subscriptions. */
async function openSubscribed(cookie: string, peerId: string, i: number): Promise<WebSocket> {
  const ws = new WebSocket(server.wsUrl, 'graphql-transport-ws', { headers: { cookie } });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise((resolve) => ws.once('message', resolve));
  const queries = [
    { query: 'subscription { messageAdded { id text } }' },
    { query: 'subscription($w: ID) { typing(with: $w) { typing } }', variables: { w: i % 2 ? peerId : null } },
    { query: 'subscription($w: ID!) { messageAdded(with: $w) { id mine } }', variables: { w: peerId } },
  ].slice(0, SUBSCRIPTIONS_PER_CONNECTION);
  queries.forEach((payload, k) => ws.send(JSON.stringify({ id: String(k), type: 'subscribe', payload })));
  return ws;
}

test('opening and closing thousands of subscriptions and connections returns to the baseline', async () => {
  const users = Array.from({ length: 20 }, () => new TestClient(server));
  const ids = await Promise.all(users.map(async (u) => (await u.me()).id));
  const baseline = snapshot();
  const heapBefore = await heapMb();
  const report: string[] = [];
  let heapAfterFirst: number | undefined;

  for (let round = 1; round <= ROUNDS; round++) {
    const sockets: WebSocket[] = [];
    for (let i = 0; i < CONNECTIONS; i += 50) {
      sockets.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, CONNECTIONS - i) }, (_, j) => {
            const n = i + j;
            return openSubscribed(users[n % users.length].cookie!, ids[(n + 1) % users.length], n);
          }),
        )),
      );
    }
    const full = baseline.subscribers + CONNECTIONS * SUBSCRIPTIONS_PER_CONNECTION;
    await waitFor(() => server.services.realtime.stats().subscribers >= full, { timeout: 30000, interval: 50 }).catch(
      () => undefined, // the assertions below say what is missing
    );
    const peak = snapshot();
    expect(peak.subscribers).toBe(baseline.subscribers + CONNECTIONS * SUBSCRIPTIONS_PER_CONNECTION);
    expect(peak.connections).toBe(baseline.connections + CONNECTIONS);
    // Traffic while subscribed, so channels really did work.
    await users[0].data('mutation { sendMessage(input: { text: "leak check" }) { id } }');
    const heapPeak = process.memoryUsage().heapUsed / 2 ** 20;

    // Half complete their subscriptions first, half just drop the connection.
    sockets.forEach((ws, i) => {
      if (i % 2)
        for (let k = 0; k < SUBSCRIPTIONS_PER_CONNECTION; k++)
          ws.send(JSON.stringify({ id: String(k), type: 'complete' }));
    });
    // Closing only once the server has ended those, so half really take the `complete` path.
    const completed = Math.floor(sockets.length / 2) * SUBSCRIPTIONS_PER_CONNECTION;
    await waitFor(() => server.services.realtime.stats().subscribers <= full - completed, {
      timeout: 30000,
      interval: 20,
      what: 'the completed subscriptions to end',
    });
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise((r) => {
            ws.once('close', r);
            ws.close();
          }),
      ),
    );
    await waitFor(() => JSON.stringify(snapshot()) === JSON.stringify(baseline), {
      timeout: 10000,
      interval: 50,
    }).catch(
      () => undefined, // the assertion below shows the difference
    );
    const after = snapshot();
    const heapAfter = await heapMb();
    heapAfterFirst ??= heapAfter;
    report.push(
      `round ${round}: peak ${peak.connections} connections / ${peak.subscribers} subscriptions in ${peak.channels} channels, ` +
        `heap ${heapBefore.toFixed(1)} -> peak ${heapPeak.toFixed(1)} -> after ${heapAfter.toFixed(1)} MiB`,
    );
    expect(after).toEqual(baseline);
  }
  const heapEnd = await heapMb();
  report.push(
    `baseline ${JSON.stringify(baseline)}; heap before ${heapBefore.toFixed(1)} MiB, after ${ROUNDS} rounds ${heapEnd.toFixed(1)} MiB`,
  );
  console.log(`leak check\n${report.join('\n')}`);
  // Caches that fill once (parsed documents, user records) grow the heap in the first round
  // only, by an amount that depends on what else lives in the shared jest process; a leak grows
  // it every round.
  expect(heapEnd - heapBefore).toBeLessThan(30);
  expect(heapEnd - heapAfterFirst!).toBeLessThan(6);
}, 180000);
