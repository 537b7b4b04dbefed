import type { Context } from '../context';
import { ForbiddenError } from '../errors';
import type { PubSub } from '../realtime/pubsub';
import { SESSION_REVOKED_TOPIC, type SessionRevokedPayload } from '../sessions/session.events';
import type { RateLimits } from '../security/rate-limit';
import type { UserService } from './user.service';
import type { UserRecord } from './user.type';

export class IdentityService {
  constructor(
    private readonly users: UserService,
    private readonly pubsub: PubSub,
    private readonly limits: RateLimits,
  ) {}

  /** A new user and a new session for this browser; the old session's sockets are closed everywhere. */
  async reset(ctx: Context): Promise<UserRecord> {
    if (!ctx.sessionControl) {
      throw new ForbiddenError('resetIdentity must be sent over HTTP, where the new session cookie can be set');
    }
    const oldSessionId = ctx.sessionId;
    // A reset makes a new identity like a first visit does: the same per-address budget.
    await this.limits.consume('identities', { ip: ctx.ip });
    const user = await this.users.create();
    await ctx.sessionControl.regenerate(user.id);
    const payload: SessionRevokedPayload = { sessionId: oldSessionId };
    await this.pubsub.publish(SESSION_REVOKED_TOPIC, payload).catch(() => undefined);
    return user;
  }
}
