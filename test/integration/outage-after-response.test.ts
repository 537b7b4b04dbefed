/**
 * The database going away between an HTTP answer and the session write that follows it
 * (express-session extends a session's expiry once the response is written).
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import { TestClient } from '../helpers/client';
import { openDb, privateFerretDB } from '../helpers/db';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

let db: Awaited<ReturnType<typeof privateFerretDB>>;
let first: TestServer;
let second: TestServer;
const lines: Array<{ level: number; msg: string; err?: { message?: string } }> = [];

beforeAll(async () => {
  db = await privateFerretDB();
  const env = { DB_TIMEOUT_MS: '1500' };
  first = await startServer({ mongodbUri: db.uri, env });
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as never);
      done();
    },
  });
  second = await startServer({ mongodbUri: db.uri, env, logger: createLogger({ logLevel: 'warn' }, sink) });
});
afterAll(async () => {
  await second?.close().catch(() => undefined);
  await first?.close().catch(() => undefined);
  await db.cleanup();
});

test('a session write that fails after the answer was sent is a warning: no ERR_HTTP_HEADERS_SENT, no error log', async () => {
  const consoleErrors = jest.spyOn(console, 'error');
  try {
    const browser = new TestClient(first);
    const { id } = await browser.me();
    // The session's expiry was last written two minutes ago, so the next answer that reads it
    // from the database is followed by a write extending it (at most one per minute).
    const sid = decodeURIComponent(browser.cookie!.split('=')[1]).slice(2).split('.')[0];
    const { db: direct, close } = await openDb(db.uri);
    try {
      const sessions = direct.collection<{ _id: string; expires: Date }>('sessions');
      const doc = await sessions.findOne({ _id: sid });
      expect(doc).not.toBeNull();
      await sessions.updateOne({ _id: sid }, { $set: { expires: new Date(doc!.expires.getTime() - 120_000) } });
    } finally {
      await close();
    }
    // The second instance reads the session (and the user) into memory over a WebSocket
    // upgrade, which writes nothing.
    const ws = new TestClient(second);
    ws.cookie = browser.cookie;
    const socket = ws.ws();
    await socket.connected();
    await socket.close();

    db.process!.kill('SIGKILL');
    await new Promise((r) => db.process!.once('exit', r));

    // Answered from memory; the expiry write after it fails.
    const answer = await ws.gql<{ me: { id: string } }>('{ me { id } }');
    expect(answer.status).toBe(200);
    expect(answer.data?.me.id).toBe(id);
    await waitFor(() => lines.some((l) => /session not written/.test(l.msg)), {
      timeout: 10_000,
      what: 'the failed session write to be logged',
    });
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.find((l) => /session not written/.test(l.msg))?.level).toBe(40);
    expect(JSON.stringify(lines)).not.toMatch(/ERR_HTTP_HEADERS_SENT/);
    expect(consoleErrors).not.toHaveBeenCalled();
    // The instance still answers.
    expect((await ws.gql<{ me: { id: string } }>('{ me { id } }')).data?.me.id).toBe(id);
  } finally {
    consoleErrors.mockRestore();
  }
});
