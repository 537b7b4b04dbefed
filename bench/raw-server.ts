/**
 * The ceiling: a bare `ws` server that broadcasts the same graphql-ws `next` frames our
 * server sends, to the same number of sockets, with no GraphQL, database or sessions.
 * Each client first sends `{"id":"<subscription id>"}`; `POST /send {"text"}` broadcasts.
 *
 * Run by bench/run.ts as its own process; prints `READY <port>` when listening.
 */
import { broadcastHttpServer } from './broadcast-http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const prefixes = new Map<WebSocket, string>();

const http = broadcastHttpServer((message) => {
  // Serialise once, then one frame per socket with its own subscription id.
  const payload = JSON.stringify({ data: { messageAdded: message } });
  for (const [socket, prefix] of prefixes) socket.send(prefix + payload + '}');
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
