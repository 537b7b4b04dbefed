/**
 * The ceiling: a bare `ws` server that broadcasts the same graphql-ws `next` frames our
 * server sends, to the same number of sockets, with no GraphQL, database or sessions.
 * Each client first sends `{"id":"<subscription id>"}`; `POST /send {"text"}` broadcasts.
 *
 * Run by bench/run.ts as its own process; prints `READY <port>` when listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const sender = { id: '65a1b2c3d4e5f60718293a4b', username: 'QuietOtter42', avatarUrl: '/avatars/QuietOtter42.svg' };
const prefixes = new Map<WebSocket, string>();
let seq = 0;

const http = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/send') return void res.writeHead(404).end();
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d: string) => (body += d));
  req.on('end', () => {
    const { text } = JSON.parse(body) as { text: string };
    seq++;
    const message = {
      id: `lobby:${String(seq).padStart(12, '0')}`,
      text,
      createdAt: new Date().toISOString(),
      sender,
    };
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ data: { sendMessage: { id: message.id } } }));
    // Serialise once, then one frame per socket with its own subscription id.
    const payload = JSON.stringify({ data: { messageAdded: message } });
    for (const [socket, prefix] of prefixes) socket.send(prefix + payload + '}');
  });
});

const wss = new WebSocketServer({ server: http, path: '/graphql', perMessageDeflate: false });
wss.on('connection', (socket) => {
  socket.once('message', (data) => {
    const { id } = JSON.parse((data as Buffer).toString()) as { id: string };
    prefixes.set(socket, `{"id":${JSON.stringify(id)},"type":"next","payload":`);
  });
  socket.on('close', () => prefixes.delete(socket));
});

http.listen(0, '127.0.0.1', () => {
  console.log(`READY ${(http.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => process.exit(0));
