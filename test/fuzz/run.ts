/**
 * `npm run fuzz -- --cases 100000 [--seed N] [--batch 500] [--concurrency 6]`: the long fuzz
 * run against a server of its own on a fresh embedded FerretDB. Progress goes to stderr, the
 * report (JSON) to stdout; the exit code is 1 when anything was found.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { startFerretDB } from '../../src/db/embedded';
import { createServer } from '../../src/app';
import { fuzz, replayBatch } from './fuzzer';
import { captureConsoleErrors, errorLogger, FUZZ_ENV, fuzzTarget, trackCaches } from './target';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer`);
  return value;
}

async function main(): Promise<void> {
  const cases = arg('cases', 100_000);
  const seed = arg('seed', 20261126);
  const batchSize = arg('batch', 500);
  const concurrency = arg('concurrency', 6);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anonymo-fuzz-'));
  const ferretdbBin = process.env.FERRETDB_BIN ?? path.resolve('.tools/bin/ferretdb');
  const db = await startFerretDB({ dataDir, dbName: 'fuzz', ferretdbBin });
  const { logger, lines } = errorLogger();
  const restore = captureConsoleErrors(lines);
  const caches = trackCaches();
  const server = await createServer({
    config: loadConfig(FUZZ_ENV),
    mongodbUri: db.uri,
    sessionSecret: FUZZ_ENV.SESSION_SECRET,
    logger,
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    process.stderr.write('stopping after this batch\n');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const replay = process.argv.indexOf('--replay-batch');
    if (replay >= 0) {
      const found = await replayBatch(fuzzTarget(server, db.uri, lines), {
        seed,
        cases,
        batchSize,
        batch: arg('replay-batch', 0),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
      return;
    }
    const report = await fuzz(fuzzTarget(server, db.uri, lines, caches), {
      seed,
      cases,
      batchSize,
      concurrency,
      heapSnapshotDir: process.env.FUZZ_HEAP_SNAPSHOTS,
      stop: () => stopping,
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
    });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.exitCode = report.bugs.length ? 1 : 0;
  } finally {
    restore();
    caches.restore();
    await server.close();
    await db.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(2);
});
