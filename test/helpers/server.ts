/** Starts a real Anonymo server on port 0 against the test database. */
import { loadConfig, type Config } from '../../src/config';
import { createServer, type AnonymoServer } from '../../src/app';
import { dbUri, freshDbName } from './db';

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123';

export const GENEROUS_RATE_LIMITS: Record<string, string> = {
  RATE_LIMIT_SEND_MESSAGE: '100000/1s',
  RATE_LIMIT_SEND_MESSAGE_IP: '100000/1s',
  RATE_LIMIT_TYPING: '100000/1s',
  RATE_LIMIT_TYPING_IP: '100000/1s',
  RATE_LIMIT_FIND_STRANGER: '100000/1s',
  RATE_LIMIT_FIND_STRANGER_IP: '100000/1s',
  RATE_LIMIT_REPORT_MESSAGE: '100000/1s',
  RATE_LIMIT_IDENTITIES_IP: '100000/1s',
  RATE_LIMIT_WS_CONNECTIONS_IP: '100000/1s',
  RATE_LIMIT_WS_OPERATIONS: '100000/1s',
  RATE_LIMIT_REPLAY_MESSAGES: '100000/1s',
  RATE_LIMIT_HTTP_IP: '100000/1s',
  WS_MAX_CONNECTIONS_PER_IP: '100000',
  WS_MAX_CONNECTIONS_PER_USER: '100000',
  WS_UPGRADE_RATE: '1000000',
  WS_UPGRADE_BURST: '1000000',
};

export interface TestServer extends AnonymoServer {
  config: Config;
  mongodbUri: string;
  dbName: string;
}

export interface StartOptions {
  /** Environment variables on top of the test defaults. */
  env?: Record<string, string>;
  /** Reuse a database (restart tests); default a fresh one. */
  dbName?: string;
  /** A full URI instead of a database on the shared test server. */
  mongodbUri?: string;
  pubsub?: Parameters<typeof createServer>[0]['pubsub'];
  /** A logger of the test's own (to read the log lines). */
  logger?: Parameters<typeof createServer>[0]['logger'];
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const dbName = opts.dbName ?? freshDbName();
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DB_TIMEOUT_MS: '2000',
    SHUTDOWN_TIMEOUT_MS: '3000',
    PRESENCE_GRACE_MS: '300',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    METRICS_PORT: '0',
    // Tests make many identities and connections from 127.0.0.1: limits stay on (the code
    // paths run) but are far away; tests about a limit set a tight one.
    ...GENEROUS_RATE_LIMITS,
    // CI runs the integration suite a second time with DB_STRATEGY=mongodb (against FerretDB).
    ...(process.env.DB_STRATEGY ? { DB_STRATEGY: process.env.DB_STRATEGY } : {}),
    ...opts.env,
  });
  const mongodbUri = opts.mongodbUri ?? dbUri(dbName);
  const server = await createServer({
    config,
    mongodbUri,
    sessionSecret: TEST_SECRET,
    pubsub: opts.pubsub,
    logger: opts.logger,
  });
  return Object.assign(server, { config, mongodbUri, dbName });
}
