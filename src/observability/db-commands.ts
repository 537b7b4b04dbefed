/**
 * Database commands per GraphQL operation, from the driver's command monitoring
 * (`monitorCommands: true`, `commandStarted`): each command is charged to the operation in
 * whose async context it started (AsyncLocalStorage). Commands started outside any
 * operation (timers, fan-out of other instances' events) are only in the total.
 *
 * Sampled in time (`DB_COMMAND_SAMPLING`, percent): only operations that start in the first
 * part of each 10 s period get a scope, and the AsyncLocalStorage is disabled again once that
 * window and a grace period for its operations are over. On Node 20 an enabled
 * AsyncLocalStorage runs a hook for every promise created anywhere in the process and adds a
 * field to each: measured on HTTP sends, 21 KB more allocation (13 %) and ~9 % more CPU per
 * message (docs/PERFORMANCE.md). A histogram of commands per operation needs a fair sample,
 * not every operation; the per-command totals are always complete.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';

export interface CommandScope {
  commands: number;
}

/** Anything that emits the driver's `commandStarted` events (a MongoClient). */
export interface CommandMonitor {
  on(event: 'commandStarted', listener: (event: { commandName: string }) => void): unknown;
}

const SCOPE = Symbol('anonymo.dbCommandScope');
type ScopedRequest = IncomingMessage & { [SCOPE]?: CommandScope };

export interface CommandSampling {
  /** Percent of the time during which starting operations are counted; 100 counts all (default). */
  percent: number;
  /** Length of one period, whose first `percent` % is the window. Default 10 s. */
  periodMs?: number;
  /**
   * How long after its window's end the last sampled operations may still run and be
   * counted before the storage is disabled. Default 2 s (at most the rest of the period).
   */
  graceMs?: number;
  now?: () => number;
}

export class CommandCounter {
  private readonly als = new AsyncLocalStorage<CommandScope | undefined>();
  /** Every command this instance sent, by command name (insert, find, update, ...). */
  readonly totals = new Map<string, number>();
  private readonly percent: number;
  private readonly periodMs: number;
  private readonly windowMs: number;
  private readonly graceMs: number;
  private readonly now: () => number;
  /** Whether the storage is enabled (our own record: Node's is not public). */
  private enabled = false;
  private disableTimer?: NodeJS.Timeout;

  constructor(
    private readonly onCommand?: (commandName: string) => void,
    sampling: CommandSampling = { percent: 100 },
  ) {
    this.percent = Math.min(100, Math.max(0, sampling.percent));
    this.periodMs = sampling.periodMs ?? 10000;
    this.windowMs = (this.periodMs * this.percent) / 100;
    this.graceMs = Math.min(sampling.graceMs ?? 2000, this.periodMs - this.windowMs);
    this.now = sampling.now ?? Date.now;
  }

  /** Counts the commands `client` sends. */
  observe(client: CommandMonitor): void {
    client.on('commandStarted', ({ commandName }) => {
      this.totals.set(commandName, (this.totals.get(commandName) ?? 0) + 1);
      this.onCommand?.(commandName);
      if (!this.enabled) return;
      const scope = this.als.getStore();
      if (scope) scope.commands++;
    });
  }

  /** The scope of the operation running now, if any. */
  current(): CommandScope | undefined {
    return this.enabled ? this.als.getStore() : undefined;
  }

  /**
   * Whether an operation starting now is counted. Inside a window the storage is (re)enabled
   * by the caller's run/enterWith, and its disabling is scheduled for the window's end plus
   * the grace period.
   */
  private sampling(): boolean {
    if (this.percent >= 100) return (this.enabled = true);
    if (this.percent <= 0) return false;
    const now = this.now();
    const phase = now % this.periodMs;
    if (phase >= this.windowMs) return false;
    this.enabled = true;
    if (!this.disableTimer) {
      this.disableTimer = setTimeout(() => this.disable(), this.windowMs - phase + this.graceMs);
      this.disableTimer.unref();
    }
    return true;
  }

  private disable(): void {
    this.disableTimer = undefined;
    this.enabled = false;
    this.als.disable();
  }

  /** Runs `fn` (and everything it starts) as a new scope, if sampled. */
  run<T>(fn: () => T): T {
    return this.sampling() ? this.als.run({ commands: 0 }, fn) : fn();
  }

  /**
   * Makes the rest of the current synchronous call and its continuations a new scope, if
   * sampled; otherwise no scope (not an earlier operation's, left on a shared resource such
   * as a WebSocket's).
   */
  enter(): CommandScope | undefined {
    if (!this.sampling()) {
      if (this.enabled) this.als.enterWith(undefined);
      return undefined;
    }
    const scope = { commands: 0 };
    this.als.enterWith(scope);
    return scope;
  }

  /**
   * Express middleware pair for one HTTP request: `begin` opens the scope (put it before the
   * session middleware, whose read belongs to the request), `resume` re-enters it after the
   * body parser, whose stream callbacks run outside the request's async context.
   */
  middleware(): { begin: RequestHandler; resume: RequestHandler } {
    return {
      begin: (req, _res, next) => {
        if (!this.sampling()) return next();
        const scope: CommandScope = { commands: 0 };
        (req as ScopedRequest)[SCOPE] = scope;
        this.als.run(scope, next);
      },
      resume: (req, _res, next) => {
        const scope = (req as ScopedRequest)[SCOPE];
        if (scope && this.enabled) this.als.run(scope, next);
        else next();
      },
    };
  }

  /** Stops the sampling timer. */
  close(): void {
    clearTimeout(this.disableTimer);
  }
}
