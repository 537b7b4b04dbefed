/**
 * What the two baseline servers (bench/raw-server.ts, bench/socketio-server.ts) share: the
 * `POST /send {"text"}` endpoint that stores nothing, answers like `sendMessage` and hands
 * the lobby message our server would publish to `broadcast`.
 */
import { createServer, type Server } from 'node:http';

const sender = { id: '65a1b2c3d4e5f60718293a4b', username: 'QuietOtter42', avatarUrl: '/avatars/QuietOtter42.svg' };

export interface LobbyMessage {
  id: string;
  text: string;
  createdAt: string;
  sender: typeof sender;
}

export function broadcastHttpServer(broadcast: (message: LobbyMessage) => void): Server {
  let seq = 0;
  return createServer((req, res) => {
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
      broadcast(message);
    });
  });
}
