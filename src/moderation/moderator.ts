/**
 * Who is a moderator: a request that presents one of the MODERATOR_TOKEN tokens. Tokens are
 * compared as SHA-256 digests with crypto.timingSafeEqual, against every configured token
 * (no early exit), so the time taken says nothing about how much of a guess was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from '../context';
import { ForbiddenError } from '../errors';
import type { ModeratorToken } from './moderation.config';

export interface Moderator {
  /** The token's label: who acted, in the audit log. */
  label: string;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export class ModeratorAuth {
  private readonly tokens: Array<{ label: string; digest: Buffer }>;

  constructor(tokens: readonly ModeratorToken[]) {
    this.tokens = tokens.map((t) => ({ label: t.label, digest: digest(t.token) }));
  }

  /** Whether MODERATOR_TOKEN is configured at all. */
  get enabled(): boolean {
    return this.tokens.length > 0;
  }

  /** The moderator a presented token belongs to, or null. */
  identify(token: string | undefined): Moderator | null {
    if (token === undefined || !this.enabled) return null;
    const presented = digest(token);
    let found: Moderator | null = null;
    for (const t of this.tokens) {
      if (timingSafeEqual(presented, t.digest) && !found) found = { label: t.label };
    }
    return found;
  }

  /** The operation's moderator; FORBIDDEN for everyone else, and for everyone while moderation is off. */
  require(ctx: Pick<Context, 'moderatorToken'>): Moderator {
    if (!this.enabled) throw new ForbiddenError('Moderation is off on this server (MODERATOR_TOKEN is not set)');
    const moderator = this.identify(ctx.moderatorToken);
    if (!moderator) throw new ForbiddenError('Moderators only');
    return moderator;
  }
}
