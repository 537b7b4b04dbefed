/** Database access for tests: the shared test server, fresh database names, and private FerretDBs. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { startFerretDB, type EmbeddedDatabase } from '../../src/db/embedded';

/** Base URI of the run's database server, ending with '/'. */
export function baseUri(): string {
  const uri = process.env.ANONYMO_TEST_MONGODB_URI ?? process.env.MONGODB_URI;
  if (!uri) throw new Error('No test database: run through jest (global setup) or set MONGODB_URI');
  // Strip any database name so callers can append their own.
  const u = new URL(uri);
  u.pathname = '/';
  return u.toString();
}

/** A database name no other test uses. */
export function freshDbName(prefix = 't'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export function dbUri(name: string, base = baseUri()): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A direct driver connection, to check what is (not) stored. */
export async function openDb(uri: string): Promise<{ db: Db; close(): Promise<void> }> {
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 5000 });
  return { db: client.db(), close: () => client.close() };
}

/**
 * A FerretDB of the test's own (to kill and restart), on a temporary folder; restarted on the
 * same folder it listens on the same socket, so its URI stays valid.
 */
export async function privateFerretDB(
  opts: { dataDir?: string } = {},
): Promise<EmbeddedDatabase & { cleanup(): Promise<void> }> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'anonymo-private-db-'));
  const db = await startFerretDB({ dataDir, dbName: 'anonymo' });
  return {
    ...db,
    cleanup: async () => {
      await db.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
