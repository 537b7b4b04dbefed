/**
 * gallopHead (src/db/sequence.ts): the newest number of a gap-free sequence found with
 * existence lookups only. Counts lookups, since that is the point of galloping.
 */
import { gallopHead } from '../../src/db/sequence';

/** A sequence 1..actual with a lookup counter (an `_id` lookup in the real stores). */
function sequence(actual: number) {
  const s = {
    lookups: 0,
    exists: (n: number): Promise<boolean> => {
      s.lookups++;
      return Promise.resolve(n >= 1 && n <= actual);
    },
  };
  return s;
}

const log2 = (n: number) => Math.log2(Math.max(n, 1));

describe('gallopHead', () => {
  const actuals = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 127, 128, 129, 1000, 4095, 4096, 65537, 1e6];

  test.each(actuals)('finds the head %d from 0', async (actual) => {
    const s = sequence(actual);
    await expect(gallopHead(0, s.exists)).resolves.toBe(actual);
  });

  test('finds the exact head from every known value up to it (small sequences, exhaustively)', async () => {
    for (let actual = 0; actual <= 70; actual++) {
      for (let known = 0; known <= actual; known++) {
        const s = sequence(actual);
        expect([known, actual, await gallopHead(known, s.exists)]).toEqual([known, actual, actual]);
      }
    }
  });

  test.each([
    [0, 0],
    [1, 1],
    [10, 10],
    [123456, 123456],
  ])('one lookup when nothing changed since known=%d', async (known, actual) => {
    const s = sequence(actual);
    await expect(gallopHead(known, s.exists)).resolves.toBe(actual);
    expect(s.lookups).toBe(1);
  });

  test('a few lookups when one number was added since the last call', async () => {
    const s = sequence(501);
    await expect(gallopHead(500, s.exists)).resolves.toBe(501);
    // 501 exists, 502 does not: the gallop stops, and the boundary is already exact.
    expect(s.lookups).toBeLessThanOrEqual(3);
  });

  test.each([
    [0, 1000],
    [0, 1e6],
    [0, 2 ** 20 + 1],
    [1000, 1e6],
    [50, 51 + 2 ** 16],
  ])('O(log n) lookups from known=%d to head %d', async (known, actual) => {
    const s = sequence(actual);
    await expect(gallopHead(known, s.exists)).resolves.toBe(actual);
    // Galloping doubles the step (log2 d + 1 lookups), then bisects a range of that size.
    const bound = 2 * Math.ceil(log2(actual - known)) + 3;
    expect(s.lookups).toBeLessThanOrEqual(bound);
    // And it is nowhere near linear.
    expect(s.lookups).toBeLessThan(Math.max(8, (actual - known) / 10));
  });

  test('a lookup that fails propagates instead of returning a wrong head', async () => {
    let calls = 0;
    const exists = (n: number) => {
      if (++calls === 3) return Promise.reject(new Error('database away'));
      return Promise.resolve(n <= 100);
    };
    await expect(gallopHead(0, exists)).rejects.toThrow('database away');
  });
});
