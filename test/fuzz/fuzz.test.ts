/**
 * The fuzzer as a standing test: a short seeded run against a real server (the long run is
 * `npm run fuzz -- --cases 100000`). Reproduce a failure with the same seed and batch.
 */
import { loadConfig } from '../../src/config';
import { createServer, type AnonymoServer } from '../../src/app';
import { dbUri, freshDbName } from '../helpers/db';
import { TEST_SECRET } from '../helpers/server';
import { fuzz, type FuzzReport } from './fuzzer';
import { captureConsoleErrors, errorLogger, FUZZ_ENV, fuzzTarget, trackCaches } from './target';

const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const CASES = Number(process.env.FUZZ_CASES ?? 2000);

let server: AnonymoServer;
let report: FuzzReport;
let restore: () => void;
let caches: ReturnType<typeof trackCaches>;
beforeAll(async () => {
  const { logger, lines } = errorLogger();
  restore = captureConsoleErrors(lines);
  caches = trackCaches();
  const mongodbUri = dbUri(freshDbName('fuzz'));
  server = await createServer({ config: loadConfig(FUZZ_ENV), mongodbUri, sessionSecret: TEST_SECRET, logger });
  report = await fuzz(fuzzTarget(server, mongodbUri, lines, caches), { seed: SEED, cases: CASES, batchSize: 200 });
}, 240_000);
afterAll(async () => {
  restore();
  caches.restore();
  await server?.close();
});

test(`${CASES} generated HTTP and graphql-ws cases (seed ${SEED}): no crash, hang, leak, 5xx or INTERNAL_SERVER_ERROR`, () => {
  expect(report.cases).toBe(CASES);
  expect(report.bugs).toEqual([]);
  // The cases reached past the transport: operations ran and were refused for many reasons.
  expect(Object.keys(report.errorCodes)).toEqual(
    expect.arrayContaining(['BAD_USER_INPUT', 'GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_REQUEST']),
  );
  expect(report.httpStatuses['200']).toBeGreaterThan(CASES / 20);
});

test('the database changed only by legitimate operations, and the heap returned near its baseline', () => {
  expect(report.database.newMessages).toBeLessThanOrEqual(report.database.allowedMessages);
  expect(report.database.newMessages).toBeGreaterThan(0);
  // No user without a cookie handed out for it (fuzzer.ts's database check explains the old excess).
  expect(report.database.newUsers).toBeLessThanOrEqual(report.database.allowedIdentities);
  expect(report.live).toEqual({ connections: 0, subscribers: 0, plans: 0 });
  // Measured with the bounded caches emptied (they fill up over a run); each within its bound.
  expect(report.heap.finalRatio).toBeLessThan(1.1);
  const sites = report.caches.map((c) => c.site);
  expect(sites).toEqual(expect.arrayContaining([expect.stringMatching(/users\/user\.service/)]));
  // The parsed-document caches of both transports (WebSocket, and Apollo's document store).
  expect(new Set(sites.filter((s) => /validation\.(ts|js)/.test(s))).size).toBe(2);
  for (const c of report.caches) {
    if (c.max) expect(c.size).toBeLessThanOrEqual(c.max);
    if (c.maxSize) expect(c.calculatedSize).toBeLessThanOrEqual(c.maxSize);
  }
});
