import type { Context } from '../context';
import { ForbiddenError } from '../errors';
import type { PubSub } from '../realtime/pubsub';
import { SESSION_REVOKED_TOPIC, type SessionRevokedPayload } from '../sessions/session.events';
import type { IdentityGate } from '../security/pow';
import type { RateLimits } from '../security/rate-limit';
import type { UserService } from './user.service';
import type { UserRecord } from './user.type';

export class IdentityService {
  constructor(
    private readonly users: UserService,
    private readonly pubsub: PubSub,
    private readonly limits: RateLimits,
    private readonly gate: IdentityGate,
  ) {}

  /** A challenge for the next new identity of this client's network (null with POW_MODE=off). */
  challenge(ctx: Context) {
    return this.gate.challengeFor(ctx.ip);
  }

  /** A new user and a new session for this browser; the old session's sockets are closed everywhere. */
  async reset(ctx: Context): Promise<UserRecord> {
    if (!ctx.sessionControl) {
      throw new ForbiddenError('resetIdentity must be sent over HTTP, where the new session cookie can be set');
    }
    // This request arrived without a session and was given a brand-new identity and session
    // already: that is the reset. A second user would be one nobody holds a cookie for.
    if (ctx.identityCreated) return ctx.user;
    const oldSessionId = ctx.sessionId;
    // A reset makes a new identity like a first visit does: the same per-address budget, and
    // the same proof of work when POW_MODE asks for it.
    await this.gate.admit(ctx.ip, ctx.powSolution, () => this.limits.consume('identities', { ip: ctx.ip }));
    const user = await this.users.create();
    await ctx.sessionControl.regenerate(user.id);
    const payload: SessionRevokedPayload = { sessionId: oldSessionId };
    await this.pubsub.publish(SESSION_REVOKED_TOPIC, payload).catch(() => undefined);
    return user;
  }
}
