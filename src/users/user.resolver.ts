import { Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
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

  @Mutation(() => User, {
    description:
      'Starts over: a new anonymous identity and a new session (cookie). The old session ends and its ' +
      'WebSockets are closed with code 4001 so clients reconnect as the new user. HTTP only.',
  })
  resetIdentity(@Ctx() ctx: Context): Promise<UserRecord> {
    return this.services.identity.reset(ctx);
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
