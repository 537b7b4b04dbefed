import { MAX_QUEUED_EVENTS, sinkIterator, type Push, type SinkIterator } from '../../src/realtime/fanout';

/** An iterator whose start function hands out its end/push callbacks and records detaching. */
function harness() {
  const h: { end?: (e?: unknown) => void; push?: Push; detached: number } = { detached: 0 };
  const it = sinkIterator(async (end, push) => {
    h.end = end;
    h.push = push;
    return () => void h.detached++;
  });
  return { it, h };
}

const tick = () => new Promise((r) => setImmediate(r));

test('grouped mode: next() stays pending until the subscription ends, then reports done', async () => {
  const { it, h } = harness();
  let settled = false;
  const first = it.next().then((r) => ((settled = true), r));
  await tick();
  expect(settled).toBe(false);
  h.end!();
  await expect(first).resolves.toEqual({ done: true, value: undefined });
  expect(h.detached).toBe(1);
});

test('per-subscriber mode: pushed events are yielded in order', async () => {
  const { it, h } = harness();
  const first = it.next();
  await tick();
  h.push!('a');
  h.push!('b');
  h.push!('c');
  expect(await first).toEqual({ done: false, value: 'a' });
  expect(await it.next()).toEqual({ done: false, value: 'b' });
  expect(await it.next()).toEqual({ done: false, value: 'c' });
  await it.return!();
  expect(await it.next()).toEqual({ done: true, value: undefined });
  expect(h.detached).toBe(1);
});

test('an error ends the iteration once: the waiting next() rejects, later ones are done', async () => {
  const { it, h } = harness();
  const first = it.next();
  await tick();
  h.end!(new Error('channel failed'));
  await expect(first).rejects.toThrow('channel failed');
  await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
});

test('a subscriber that never drains its queue is reported as too slow instead of growing it', async () => {
  const { it, h } = harness();
  void it.next();
  await tick();
  for (let i = 0; i <= MAX_QUEUED_EVENTS; i++) expect(h.push!(i)).toBe(true);
  expect(h.push!('one too many')).toBe(false);
});

test('a failing start ends the subscription with its error', async () => {
  const it = sinkIterator(async () => {
    throw new Error('not allowed');
  });
  await expect(it.next()).rejects.toThrow('not allowed');
});

test('per-subscriber mode with respondWith: each event is yielded as its response, in order', async () => {
  const { it, h } = harness();
  (it as SinkIterator).respondWith(async (prefix: string, event) => {
    await tick(); // responses that take a while must not overtake one another
    return { data: { [prefix]: event } };
  }, 'event');
  const first = it.next();
  await tick();
  h.push!('a');
  h.push!('b');
  expect(await first).toEqual({ done: false, value: { data: { event: 'a' } } });
  expect(await it.next()).toEqual({ done: false, value: { data: { event: 'b' } } });
  await it.return!();
  expect(h.detached).toBe(1);
});

test('a response that fails ends the subscription (detached) and reports the error once', async () => {
  const { it, h } = harness();
  (it as SinkIterator).respondWith(() => {
    throw new Error('cannot execute');
  }, undefined);
  const first = it.next();
  await tick();
  h.push!('a');
  await expect(first).rejects.toThrow('cannot execute');
  expect(h.detached).toBe(1);
  expect(await it.next()).toEqual({ done: true, value: undefined });
});
