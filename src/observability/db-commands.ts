/**
 * Database commands per GraphQL operation, from the driver's command monitoring
 * (`monitorCommands: true`, `commandStarted`): each command is charged to the operation in
 * whose async context it started (AsyncLocalStorage). Commands started outside any
 * operation (timers, fan-out of other instances' events) are only in the total.
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

export class CommandCounter {
  private readonly als = new AsyncLocalStorage<CommandScope>();
  /** Every command this instance sent, by command name (insert, find, update, ...). */
  readonly totals = new Map<string, number>();

  constructor(private readonly onCommand?: (commandName: string) => void) {}

  /** Counts the commands `client` sends. */
  observe(client: CommandMonitor): void {
    client.on('commandStarted', ({ commandName }) => {
      this.totals.set(commandName, (this.totals.get(commandName) ?? 0) + 1);
      this.onCommand?.(commandName);
      const scope = this.als.getStore();
      if (scope) scope.commands++;
    });
  }

  /** The scope of the operation running now, if any. */
  current(): CommandScope | undefined {
    return this.als.getStore();
  }

  /** Runs `fn` (and everything it starts) as a new scope. */
  run<T>(fn: () => T): T {
    return this.als.run({ commands: 0 }, fn);
  }

  /** Makes the rest of the current synchronous call and its continuations a new scope. */
  enter(): CommandScope {
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
        const scope: CommandScope = { commands: 0 };
        (req as ScopedRequest)[SCOPE] = scope;
        this.als.run(scope, next);
      },
      resume: (req, _res, next) => {
        const scope = (req as ScopedRequest)[SCOPE];
        if (scope) this.als.run(scope, next);
        else next();
      },
    };
  }
}
