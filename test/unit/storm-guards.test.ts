import { ReplayGate } from '../../src/realtime/replay-gate';
import { UpgradeBucket } from '../../src/security/upgrade-bucket';

describe('ReplayGate: replays at once are bounded, the rest wait in line', () => {
  test('beyond the concurrency a replay waits, and starts in arrival order as slots free', async () => {
    const gate = new ReplayGate({ concurrent: 2, queue: 10 });
    const a = await gate.acquire(() => true);
    const b = await gate.acquire(() => true);
    const started: string[] = [];
    const c = gate.acquire(() => true).then((r) => (started.push('c'), r));
    const d = gate.acquire(() => true).then((r) => (started.push('d'), r));
    await Promise.resolve();
    expect(started).toEqual([]);
    expect(gate.stats()).toEqual({ running: 2, waiting: 2, refused: 0 });
    a();
    a(); // a second release of the same slot frees nothing more
    const releaseC = await c;
    expect(started).toEqual(['c']);
    expect(gate.stats()).toMatchObject({ running: 2, waiting: 1 });
    b();
    (await d)();
    releaseC();
    expect(gate.stats()).toEqual({ running: 0, waiting: 0, refused: 0 });
  });

  test('a full queue refuses the next replay with RATE_LIMITED and a retryAfterMs', async () => {
    const gate = new ReplayGate({ concurrent: 1, queue: 1, retryAfterMs: 700 });
    await gate.acquire(() => true);
    void gate.acquire(() => true);
    await expect(gate.acquire(() => true)).rejects.toMatchObject({
      extensions: { code: 'RATE_LIMITED', retryAfterMs: 700 },
    });
    expect(gate.stats().refused).toBe(1);
  });

  test('a waiter whose subscriber left is skipped and holds no slot', async () => {
    const gate = new ReplayGate({ concurrent: 1, queue: 1 });
    const first = await gate.acquire(() => true);
    let alive = true;
    const gone = gate.acquire(() => alive);
    alive = false;
    // The queue is full of a gone waiter: it is dropped to make room rather than refusing.
    const next = gate.acquire(() => true);
    (await gone)();
    expect(gate.stats()).toMatchObject({ running: 1, waiting: 1, refused: 0 });
    first();
    const release = await next;
    expect(gate.stats()).toMatchObject({ running: 1, waiting: 0 });
    release();
    expect(gate.stats().running).toBe(0);
  });
});

describe('UpgradeBucket: upgrades admitted at a controlled rate, refusals told when to return', () => {
  test('the burst is admitted, then one upgrade per 1/rate; refusals are spread over later slots', () => {
    let now = 1_000_000;
    const bucket = new UpgradeBucket({ ratePerSecond: 10, burst: 3 }, () => now);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0]);
    const waits = [bucket.take(), bucket.take(), bucket.take()];
    // Each refusal is promised the slot after the previous one's: 100, 200, 300 ms.
    expect(waits).toEqual([100, 200, 300]);
    expect(bucket.refused).toBe(3);
    now += 100;
    expect(bucket.take()).toBe(0);
  });

  test('a promise never reaches further than maxWaitMs', () => {
    const now = 0;
    const bucket = new UpgradeBucket({ ratePerSecond: 1, burst: 1, maxWaitMs: 5000 }, () => now);
    bucket.take();
    const waits = Array.from({ length: 20 }, () => bucket.take());
    expect(Math.max(...waits)).toBe(5000);
  });
});
