/**
 * Waiting for a condition instead of for a fixed time: a test is as fast as the behaviour it
 * checks, and a loaded machine only makes it slower, never wrong.
 */

export interface WaitOptions {
  /** Give up after this long (default 5 s). */
  timeout?: number;
  /** How often to look again (default 10 ms). */
  interval?: number;
  /** Named in the timeout error. */
  what?: string;
}

/** Resolves once `predicate` holds (it may be async); rejects after `timeout`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeout = 5000, interval = 10, what = 'condition' }: WaitOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Resolves with the value `get` returns once `accept` holds for it (see waitFor). */
export async function waitForValue<T>(
  get: () => T | Promise<T>,
  accept: (v: T) => boolean,
  options: WaitOptions = {},
): Promise<T> {
  let last: T | undefined;
  try {
    await waitFor(async () => accept((last = await get())), options);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last value ${JSON.stringify(last)}`, { cause: err });
  }
  return last as T;
}

/**
 * Resolves once the clock has moved past its value at the call, so whatever the server
 * stamps from now on is strictly later than what it stamped before (same clock, same process).
 */
export function nextMillisecond(): Promise<void> {
  const t = Date.now();
  return waitFor(() => Date.now() > t, { interval: 1, what: 'the clock to advance' });
}
