import { Ctx, Query, Resolver, Root, Subscription } from 'type-graphql';
import { live, type Context } from '../context';
import type { PresencePayload } from './presence.events';
import type { PresenceService } from './presence.service';
import { User, type UserRecord } from '../users/user.type';
import { ONLINE_USERS_MAX } from './presence.service';
import { PresenceEvent } from './presence.type';

@Resolver()
export class PresenceResolver {
  constructor(private readonly presence: Pick<PresenceService, 'onlineUserIds'>) {}

  @Query(() => [User], {
    description:
      'Users with at least one open connection (or within the grace period), by username: at most ' +
      `${ONLINE_USERS_MAX}.`,
  })
  async onlineUsers(@Ctx() ctx: Context): Promise<UserRecord[]> {
    const ids = await this.presence.onlineUserIds();
    const users = (await ctx.loaders.users.loadMany(ids)).filter(
      (u): u is UserRecord => u !== null && !(u instanceof Error),
    );
    return users.sort((a, b) => a.username.localeCompare(b.username)).slice(0, ONLINE_USERS_MAX);
  }

  @Subscription(() => PresenceEvent, {
    description:
      'A user came online (first connection) or went offline (last connection closed and the grace period ' +
      'passed). Several tabs count as one user: no event when a second tab opens.',
    subscribe: ({ context }) => live(context, 'presence', {}),
  })
  presenceChanged(@Root() p: PresencePayload): { user: UserRecord; online: boolean } {
    return { user: p.user, online: p.online };
  }
}
