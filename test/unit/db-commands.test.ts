/**
 * The commands-per-operation counter's sampling in time (DB_COMMAND_SAMPLING): which
 * operations get a scope, and that the AsyncLocalStorage is off again outside the windows.
 * The integration suite (db-commands.test.ts) counts real operations with sampling at 100.
 */
import { EventEmitter } from 'node:events';
import { CommandCounter, type CommandMonitor } from '../../src/observability/db-commands';

class Driver extends EventEmitter implements CommandMonitor {
  command(): void {
    this.emit('commandStarted', { commandName: 'find' });
  }
}

function counter(percent: number, clock: { now: number }) {
  const driver = new Driver();
  const c = new CommandCounter(undefined, { percent, periodMs: 10000, graceMs: 2000, now: () => clock.now });
  c.observe(driver);
  return { c, driver };
}

/** Runs an operation whose command is sent after an await, as the driver's are. */
async function operation(c: CommandCounter, driver: Driver) {
  let scope;
  await c.run(async () => {
    scope = c.current();
    await Promise.resolve();
    driver.command();
  });
  return scope as { commands: number } | undefined;
}

// The disabling timer runs on fake time; promises (the operations' awaits) stay real.
beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

test('at 100 percent every operation is counted, whenever it starts', async () => {
  const clock = { now: 7777 };
  const { c, driver } = counter(100, clock);
  expect((await operation(c, driver))?.commands).toBe(1);
  clock.now = 19999;
  expect((await operation(c, driver))?.commands).toBe(1);
  expect(c.totals.get('find')).toBe(2);
  c.close();
});

test('at 10 percent only operations starting in the first second of each ten are counted; totals are complete', async () => {
  const clock = { now: 20000 + 500 };
  const { c, driver } = counter(10, clock);
  expect((await operation(c, driver))?.commands).toBe(1);
  clock.now = 20000 + 1500;
  expect(await operation(c, driver)).toBeUndefined();
  clock.now = 30000 + 999;
  expect((await operation(c, driver))?.commands).toBe(1);
  expect(c.totals.get('find')).toBe(3);
  c.close();
});

test('outside the window and its grace the storage is disabled: no scope is visible, even one entered before', async () => {
  const clock = { now: 40000 };
  const { c, driver } = counter(10, clock);
  const scope = c.enter();
  expect(scope).toBeDefined();
  driver.command();
  expect(scope?.commands).toBe(1);
  // Window (1 s) plus grace (2 s): the storage is switched off.
  clock.now = 43001;
  jest.advanceTimersByTime(3001);
  expect(c.current()).toBeUndefined();
  driver.command();
  expect(scope?.commands).toBe(1);
  expect(c.totals.get('find')).toBe(2);
  c.close();
});

test('an operation not sampled while the storage is still on does not inherit an earlier scope', async () => {
  const clock = { now: 50000 };
  const { c, driver } = counter(10, clock);
  const first = c.enter();
  clock.now = 51500; // after the window, within the grace period
  expect(c.enter()).toBeUndefined();
  driver.command();
  expect(c.current()).toBeUndefined();
  expect(first?.commands).toBe(0);
  c.close();
});

test('at 0 percent nothing is counted per operation', async () => {
  const { c, driver } = counter(0, { now: 0 });
  expect(await operation(c, driver)).toBeUndefined();
  expect(c.enter()).toBeUndefined();
  expect(c.totals.get('find')).toBe(1);
  c.close();
});
