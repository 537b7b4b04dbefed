/**
 * Builds the operation Context, the same way for both transports (http.ts and ws.ts), and the
 * viewer-less context the fan-out executes shared events with.
 */
import DataLoader from 'dataloader';
import type { Context, LiveSubscribe, Loaders, SessionControl } from '../context';
import type { Identity } from '../sessions/identity';
import type { UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';

export function createLoaders(users: Pick<UserService, 'getMany'>): Loaders {
  return {
    users: new DataLoader((ids: readonly string[]) => users.getMany(ids), { maxBatchSize: 200 }),
  };
}

export interface ContextInput {
  identity: Pick<Identity, 'user' | 'sessionId'> & Partial<Pick<Identity, 'created'>>;
  transport: Context['transport'];
  requestId: string;
  ip: string;
  sessionControl?: SessionControl;
  live?: LiveSubscribe;
  moderatorToken?: string;
  powSolution?: string;
}

/**
 * The context of one operation. Loaders are made on first use: fan-out subscriptions never load
 * through them. A class, not an object literal with a `loaders` getter: V8 keeps such a literal
 * in dictionary mode (~0.8 KiB each, one per live subscription), a class instance in fast mode.
 */
class OperationContext implements Context {
  readonly user: Context['user'];
  readonly sessionId: string;
  readonly transport: Context['transport'];
  readonly requestId: string;
  readonly ip: string;
  readonly sessionControl?: SessionControl;
  readonly live?: LiveSubscribe;
  readonly moderatorToken?: string;
  readonly identityCreated: boolean;
  readonly powSolution?: string;
  private madeLoaders: Loaders | undefined;

  constructor(
    input: ContextInput,
    private readonly users: Pick<UserService, 'getMany'>,
  ) {
    this.user = input.identity.user;
    this.sessionId = input.identity.sessionId;
    this.transport = input.transport;
    this.requestId = input.requestId;
    this.ip = input.ip;
    this.sessionControl = input.sessionControl;
    this.live = input.live;
    this.moderatorToken = input.moderatorToken;
    this.identityCreated = input.identity.created ?? false;
    this.powSolution = input.powSolution;
  }

  get loaders(): Loaders {
    return (this.madeLoaders ??= createLoaders(this.users));
  }
}

export function createContext(input: ContextInput, users: Pick<UserService, 'getMany'>): Context {
  return new OperationContext(input, users);
}

/**
 * The context of a subscription event executed once for many subscribers (see
 * realtime/fanout.ts). It has no viewer: a field that reads `user` here is a bug in the
 * viewer-dependence analysis, and fails loudly instead of leaking one viewer's data to all.
 */
export function sharedContext(users: Pick<UserService, 'getMany'>): Context {
  const ctx = createContext(
    { identity: { user: undefined as never, sessionId: '' }, transport: 'ws', requestId: 'fanout', ip: '' },
    users,
  );
  return Object.defineProperty(ctx, 'user', {
    get(): UserRecord {
      throw new Error('A viewer-dependent field was executed in the shared subscription context');
    },
  });
}
