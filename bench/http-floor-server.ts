/**
 * The floor of an HTTP send on the chosen stack: express 5, `express.json`, express-session
 * (rolling cookie, an in-memory store) and Apollo Server with the same `sendMessage` signature,
 * answering with a counter: no database, validation, security, metrics or logging. What it
 * costs per request is what Anonymo's own work adds to (bench/writes.ts reports both).
 *
 * Started by bench/writes.ts as its own process, as the server is: PORT and HOST from the
 * environment, `/readyz` when listening.
 */
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import session from 'express-session';
import { buildSchema } from 'graphql';

const typeDefs = buildSchema(`
  type User { id: ID! }
  type Message { id: ID! }
  input SendMessageInput { text: String!, clientId: String, to: ID, room: ID }
  type Query { me: User! }
  type Mutation { sendMessage(input: SendMessageInput!): Message! }
`);

interface Ctx {
  req: express.Request;
}
/** The floor's own session shape (the server's SessionData is declared in src/sessions). */
const sessionOf = (req: express.Request) => req.session as unknown as { userId?: string };

let sent = 0;
const rootValue = {
  me: (_args: unknown, { req }: Ctx) => {
    const session = sessionOf(req);
    session.userId ??= randomUUID();
    return { id: session.userId };
  },
  sendMessage: (_args: { input: { text: string } }, { req }: Ctx) => {
    if (!sessionOf(req).userId) throw new Error('no identity');
    return { id: String(++sent) };
  },
};

async function main(): Promise<void> {
  const apollo = new ApolloServer<Ctx>({
    schema: typeDefs,
    rootValue,
    plugins: [ApolloServerPluginCacheControlDisabled()],
  });
  await apollo.start();
  const app = express();
  app.set('etag', false);
  app.get('/readyz', (_req, res) => void res.json({ status: 'ready' }));
  app.use(
    '/graphql',
    express.json({ limit: 65536 }),
    session({
      name: 'anonymo.sid',
      secret: randomBytes(24).toString('hex'),
      resave: false,
      saveUninitialized: false,
      rolling: true,
      store: new session.MemoryStore(),
      cookie: { httpOnly: true, sameSite: 'lax', secure: false, maxAge: 30 * 86400000, path: '/' },
    }),
    expressMiddleware(apollo, { context: ({ req }) => Promise.resolve({ req }) }),
  );
  const server = http.createServer(app);
  server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
}

void main();
