import { Ctx, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import type { Services } from '../services';
import { User, type UserRecord } from './user.type';

@Resolver(() => User)
export class UserResolver {
  constructor(private readonly services: Services) {}

  @Query(() => User, { description: 'The viewer: this session’s anonymous identity (created on first contact).' })
  me(@Ctx() ctx: Context): UserRecord {
    return ctx.user;
  }

  @Query(() => [User], { description: 'Users with at least one open connection, by username.' })
  async onlineUsers(@Ctx() ctx: Context): Promise<UserRecord[]> {
    const ids = this.services.presence.onlineUserIds();
    const users = (await ctx.loaders.users.loadMany(ids)).filter(
      (u): u is UserRecord => u !== null && !(u instanceof Error),
    );
    return users.sort((a, b) => a.username.localeCompare(b.username));
  }

  @FieldResolver(() => String)
  avatarUrl(@Root() user: UserRecord): string {
    return this.services.avatarUrl(user.avatarSeed);
  }

  @FieldResolver(() => Boolean)
  online(@Root() user: UserRecord): boolean {
    return this.services.presence.isOnline(user.id);
  }
}
