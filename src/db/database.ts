/**
 * The MongoDB connection. Each server instance owns its own mongoose Connection (not the
 * global default), so tests can run a restarted server or two instances in one process.
 */
import mongoose, { type Connection } from 'mongoose';
import type { Logger } from 'pino';
import { strategyFor } from './strategies';
import type { StorageStrategy, StrategyName } from './strategy';

/** Which server is on the other end (detected at connect time; see docs/STORAGE.md). */
export type DatabaseKind = 'mongodb' | 'ferretdb';

export interface Database {
  connection: Connection;
  /** The detected server; only for logs and metrics: code asks `strategy`, never this. */
  kind: DatabaseKind;
  /** How to read and write this database (DB_STRATEGY, default the detected kind). */
  strategy: StorageStrategy;
  /** Round trip to the server; rejects when it is unreachable. */
  ping(): Promise<void>;
  /** True while the driver has a usable connection. */
  isConnected(): boolean;
  close(): Promise<void>;
}

export interface ConnectOptions {
  uri: string;
  /** How long an operation waits for an unreachable server before failing. */
  timeoutMs: number;
  /** `auto` (default) picks the strategy of the detected server. */
  strategy?: 'auto' | StrategyName;
  logger?: Logger;
}

/** Connects and detects the server kind; rejects (after `timeoutMs`) when unreachable. */
export async function connectDatabase({
  uri,
  timeoutMs,
  strategy = 'auto',
  logger,
}: ConnectOptions): Promise<Database> {
  const connection = mongoose.createConnection(uri, {
    // Fail fast instead of queueing operations while the database is away: callers get
    // SERVICE_UNAVAILABLE after `timeoutMs`, never an open-ended hang.
    bufferCommands: false,
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: Math.max(timeoutMs * 4, 10000),
    heartbeatFrequencyMS: 2000,
    maxPoolSize: 100,
    autoIndex: false,
    autoCreate: false,
    // commandStarted events: database commands are counted per GraphQL operation (metrics).
    monitorCommands: true,
  });
  await connection.asPromise();
  const admin = connection.db!.admin();
  const info = (await admin.command({ buildInfo: 1 })) as { version?: string; ferretdbVersion?: string };
  const kind: DatabaseKind = info.ferretdbVersion !== undefined ? 'ferretdb' : 'mongodb';
  const chosen = strategyFor(strategy === 'auto' ? kind : strategy);
  logger?.info(
    { kind, strategy: chosen.name, version: info.version, ferretdbVersion: info.ferretdbVersion },
    'database connected',
  );
  connection.on('disconnected', () => logger?.warn('database disconnected'));
  connection.on('reconnected', () => logger?.info('database reconnected'));

  return {
    connection,
    kind,
    strategy: chosen,
    async ping() {
      await connection.db!.admin().command({ ping: 1 }, { timeoutMS: timeoutMs });
    },
    isConnected: () => connection.readyState === mongoose.ConnectionStates.connected,
    close: () => connection.close(),
  };
}
