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
import { broadcastHttpServer } from './broadcast-http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';

const http = broadcastHttpServer((message) => io.emit('messageAdded', { data: { messageAdded: message } }));

const io = new Server(http, { transports: ['websocket'], serveClient: false });

http.listen(0, '127.0.0.1', () => {
  console.log(`READY ${(http.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => process.exit(0));
