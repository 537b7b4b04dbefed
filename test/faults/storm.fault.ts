/**
 * A reconnect storm in the fault suite (`npm run test:faults`): a few hundred WebSocket
 * clients on the lobby and DMs, messages flowing, the server SIGKILLed and restarted on the
 * same database; every client reconnects with jittered backoff (honouring Retry-After and
 * retryAfterMs refusals) and resumes with `after`. Nothing may be lost, duplicated or out of
 * order, and every client must resume. The full-size run is `npm run bench -- --storm`
 * (bench/storm.ts, the same harness); this one keeps the guards tight so a few hundred
 * clients already meet them.
 */
import { runStorm } from '../../bench/storm';

const CLIENTS = Number(process.env.STORM_CLIENTS ?? 300);

// Waits are for events (every client resumed, every message arrived); the timeout only
// bounds a broken run, and is generous for a loaded 2-core machine.
jest.setTimeout(600000);

test('a SIGKILLed and restarted server is resumed by every client with nothing lost, duplicated or out of order', async () => {
  const result = await runStorm({
    clients: CLIENTS,
    dms: 20,
    rate: 40,
    lobbyRate: 2,
    warmSeconds: 2,
    timeoutSeconds: 180,
    env: {
      // Tight guards, so that this small storm goes through them: a few hundred upgrades
      // within a second or two exceed the bucket, and replays queue behind 2 slots.
      WS_UPGRADE_RATE: '100',
      WS_UPGRADE_BURST: '50',
      REPLAY_CONCURRENCY: '2',
    },
    // Progress as it happens (jest's console is shown only once the test ends).
    log: (line) => process.stderr.write(`${line}\n`),
  });
  console.log(`reconnect storm\n${JSON.stringify(result, null, 2)}`);
  expect(result.messages.unacknowledged).toBe(0);
  expect(result.messages.stored).toBe(result.messages.sent);
  expect(result.messages.retried).toBeGreaterThan(0); // the kill really hit the senders
  expect(result.resumed).toBe(CLIENTS);
  expect(result.lost).toBe(0);
  expect(result.duplicated).toBe(0);
  expect(result.outOfOrder).toBe(0);
  // Every subscription received what was sent to its conversation (lobby to all, each DM to two).
  expect(result.delivered).toBeGreaterThan(0);
});
