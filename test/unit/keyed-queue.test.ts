/** KeyedQueue (src/util/keyed-queue.ts): one job at a time per key, keys independent. */
import { KeyedQueue } from '../../src/util/keyed-queue';

/** A promise with its resolve/reject, to finish jobs exactly when a test says so. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every already-settled promise callback run. */
const flush = () => new Promise((r) => setImmediate(r));

function makeQueue(): KeyedQueue {
  return new KeyedQueue();
}

describe('KeyedQueue', () => {
  test('jobs of one key run one at a time, in arrival order', async () => {
    const q = makeQueue();
    const log: string[] = [];
    const gates = [deferred(), deferred(), deferred()];
    const results = gates.map((g, i) =>
      q.run('k', async () => {
        log.push(`start ${i}`);
        await g.promise;
        log.push(`end ${i}`);
        return i;
      }),
    );
    await flush();
    expect(log).toEqual(['start 0']);
    // Finishing a later job's gate first changes nothing: it has not started.
    gates[2].resolve();
    gates[1].resolve();
    await flush();
    expect(log).toEqual(['start 0']);
    gates[0].resolve();
    await expect(Promise.all(results)).resolves.toEqual([0, 1, 2]);
    expect(log).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
  });

  test('different keys run concurrently', async () => {
    const q = makeQueue();
    const running = new Set<string>();
    const a = deferred();
    const b = deferred();
    const ra = q.run('a', async () => {
      running.add('a');
      await a.promise;
    });
    const rb = q.run('b', async () => {
      running.add('b');
      await b.promise;
    });
    await flush();
    expect([...running].sort()).toEqual(['a', 'b']);
    expect(q.size).toBe(2);
    b.resolve();
    a.resolve();
    await Promise.all([ra, rb]);
  });

  test('a failing job rejects its own caller and does not block the next job of its key', async () => {
    const q = makeQueue();
    const failing = q.run('k', () => Promise.reject(new Error('boom')));
    const thrownSync = q.run('k', () => {
      throw new Error('sync boom');
    });
    const next = q.run('k', () => Promise.resolve('after'));
    await expect(failing).rejects.toThrow('boom');
    await expect(thrownSync).rejects.toThrow('sync boom');
    await expect(next).resolves.toBe('after');
  });

  test('a key is forgotten once its queue is empty', async () => {
    const q = makeQueue();
    await q.run('k', () => Promise.resolve(1));
    await q.run('other', () => Promise.reject(new Error('x'))).catch(() => undefined);
    await flush();
    expect(q.size).toBe(0);
  });

  test('drain resolves when every queued job has settled', async () => {
    const q = makeQueue();
    const gate = deferred();
    let done = 0;
    void q.run('a', async () => {
      await gate.promise;
      done++;
    });
    void q.run('a', () => Promise.reject(new Error('fails'))).catch(() => undefined);
    void q.run('b', () => {
      done++;
      return Promise.resolve();
    });
    let drained = false;
    const drain = q.drain(60_000).then(() => (drained = true));
    await flush();
    expect(drained).toBe(false);
    gate.resolve();
    await drain;
    expect(done).toBe(2);
  });

  test('drain gives up after its timeout when a job never settles', async () => {
    jest.useFakeTimers();
    try {
      const q = makeQueue();
      void q.run('stuck', () => new Promise(() => undefined));
      let drained = false;
      const drain = q.drain(1000).then(() => (drained = true));
      await jest.advanceTimersByTimeAsync(999);
      expect(drained).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      await drain;
      expect(drained).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  test('drain of an empty queue resolves at once', async () => {
    jest.useFakeTimers();
    try {
      await expect(makeQueue().drain(1000)).resolves.toBeUndefined();
    } finally {
      jest.useRealTimers();
    }
  });
});
