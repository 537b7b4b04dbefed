/**
 * The HTTP server's drain (src/transport/http-drain.ts) on a real server over loopback:
 * upgraded sockets leave its books, in-flight requests finish before their sockets end, and
 * after the grace period the WebSockets are cut and what is left is destroyed.
 */
import { once } from 'node:events';
import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { HttpDrain } from '../../src/transport/http-drain';

async function setup(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  const drain = new HttpDrain(server);
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    drain.release(socket);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { server, drain, wss, port };
}

function get(port: number, agent: Agent, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('a WebSocket leaves the drain when it upgrades; an HTTP keep-alive socket stays until it closes', async () => {
  const { server, drain, wss, port } = await setup((_req, res) => res.end('ok'));
  const agent = new Agent({ keepAlive: true });
  try {
    const sockets = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}`);
        await once(ws, 'open');
        return ws;
      }),
    );
    expect(wss.clients.size).toBe(5);
    expect(drain.size).toBe(0);
    expect(await get(port, agent)).toEqual({ status: 200, body: 'ok' });
    expect(drain.size).toBe(1);
    agent.destroy();
    await new Promise<void>((resolve) => {
      const poll = () => (drain.size === 0 ? resolve() : setTimeout(poll, 10));
      poll();
    });
    for (const ws of sockets) ws.terminate();
  } finally {
    agent.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('stop lets an in-flight request finish, ends the idle sockets, and resolves once the server closed', async () => {
  let release: (() => void) | undefined;
  const { server, drain, port } = await setup((req, res) => {
    if (req.url === '/slow') release = () => res.end('slow done');
    else res.end('ok');
  });
  const idle = new Agent({ keepAlive: true });
  const busy = new Agent({ keepAlive: true });
  await get(port, idle);
  const slow = get(port, busy, '/slow');
  await new Promise<void>((resolve) => {
    const poll = () => (release ? resolve() : setTimeout(poll, 10));
    poll();
  });
  let cut = 0;
  const stopped = drain.stop(AbortSignal.timeout(5000), () => cut++);
  await new Promise((r) => setTimeout(r, 50));
  release!();
  expect(await slow).toEqual({ status: 200, body: 'slow done' });
  expect(await stopped).toBe(true);
  expect(cut).toBe(0);
  expect(server.listening).toBe(false);
  idle.destroy();
  busy.destroy();
});

test('after the grace period the WebSockets are cut and a hung request is destroyed', async () => {
  const { server, drain, wss, port } = await setup(() => {
    // never answers
  });
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(ws, 'open');
  const agent = new Agent({ keepAlive: true });
  const hung = get(port, agent).then(
    () => 'answered',
    (err: Error) => err.message,
  );
  await new Promise<void>((resolve) => {
    const poll = () => (drain.size === 1 ? resolve() : setTimeout(poll, 10));
    poll();
  });
  const closed = once(ws, 'close');
  const stopped = drain.stop(AbortSignal.timeout(200), () => {
    for (const client of wss.clients) client.terminate();
  });
  expect(await stopped).toBe(false);
  await closed;
  expect(await hung).toMatch(/socket hang up|ECONNRESET/);
  expect(server.listening).toBe(false);
  agent.destroy();
});
