import { Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import type { IdentityService } from './identity.service';
import { IdentityChallenge, User, type UserRecord } from './user.type';

@Resolver(() => User)
export class UserResolver {
  constructor(
    private readonly identity: IdentityService,
    private readonly presence: { isOnline(userId: string): boolean },
    private readonly avatarUrlOf: (seed: string) => string,
  ) {}

  @Query(() => User, { description: 'The viewer: this session’s anonymous identity (created on first contact).' })
  me(@Ctx() ctx: Context): UserRecord {
    return ctx.user;
  }

  @Query(() => IdentityChallenge, {
    nullable: true,
    description:
      'A proof-of-work challenge for the next new identity of this network (resetIdentity, another ' +
      'browser), and whether one is required now; null when proof of work is off (POW_MODE=off). ' +
      'A request that needs one and has none fails with POW_REQUIRED, its challenge in extensions.',
  })
  identityChallenge(@Ctx() ctx: Context): Promise<IdentityChallenge | null> {
    return this.identity.challenge(ctx);
  }

  @Mutation(() => User, {
    description:
      'Starts over: a new anonymous identity and a new session (cookie). The old session ends and its ' +
      'WebSockets are closed with code 4001 so clients reconnect as the new user. HTTP only.',
  })
  resetIdentity(@Ctx() ctx: Context): Promise<UserRecord> {
    return this.identity.reset(ctx);
  }

  @FieldResolver(() => String)
  avatarUrl(@Root() user: UserRecord): string {
    return this.avatarUrlOf(user.avatarSeed);
  }

  @FieldResolver(() => Boolean)
  online(@Root() user: UserRecord): boolean {
    return this.presence.isOnline(user.id);
  }
}
