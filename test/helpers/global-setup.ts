/**
 * Starts one FerretDB for the whole run (each test server uses its own database on it),
 * unless MONGODB_URI points at a server already. Tests that stop the database start their
 * own (see db.ts).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureFerretDB, startFerretDB, type EmbeddedDatabase } from '../../src/db/embedded';

declare global {
  var __ANONYMO_DB__: EmbeddedDatabase | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.MONGODB_URI) {
    process.env.ANONYMO_TEST_MONGODB_URI = process.env.MONGODB_URI;
    return;
  }
  if (!ensureFerretDB((m) => console.log(m))) {
    throw new Error('Tests need Go (to build FerretDB) or MONGODB_URI pointing at a MongoDB server');
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anonymo-test-db-'));
  const db = await startFerretDB({ dataDir, dbName: 'unused' });
  globalThis.__ANONYMO_DB__ = db;
  process.env.ANONYMO_TEST_MONGODB_URI = db.uri.replace(/\/unused$/, '/');
  process.env.ANONYMO_TEST_DB_DIR = dataDir;
}
