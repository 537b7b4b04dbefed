/**
 * The alternative a user would pick instead of Anonymo: a Socket.IO broadcast server. It
 * emits the same payload our server sends (`{ data: { messageAdded } }`) to every client with
 * `io.emit`, as a Socket.IO chat does. No GraphQL, database or sessions; Socket.IO's defaults
 * (no per-message compression, 25 s heartbeat), WebSocket transport only (the clients skip
 * long-polling, as most production Socket.IO clients upgrade to anyway).
 * `POST /send {"text"}` broadcasts.
 *
 * Run by bench/run.ts as its own process; prints `READY <port>` when listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';

const sender = { id: '65a1b2c3d4e5f60718293a4b', username: 'QuietOtter42', avatarUrl: '/avatars/QuietOtter42.svg' };
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
    io.emit('messageAdded', { data: { messageAdded: message } });
  });
});

const io = new Server(http, { transports: ['websocket'], serveClient: false });

http.listen(0, '127.0.0.1', () => {
  console.log(`READY ${(http.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => process.exit(0));
