import { Arg, Ctx, ID, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { live, type Context } from '../context';
import type { RateLimits } from '../security/rate-limit';
import type { UserRecord } from '../users/user.type';
import type { StrangerPayload } from './stranger.events';
import type { StrangerService } from './stranger.service';
import { StrangerChat, StrangerEvent } from './stranger.type';

@Resolver()
export class StrangerResolver {
  constructor(
    private readonly strangers: StrangerService,
    private readonly limits?: Pick<RateLimits, 'consumeFor'>,
  ) {}

  @Mutation(() => Boolean, {
    description:
      'Enters the stranger queue (a chat the viewer is in ends first). Interests: up to 5, each 1..24 letters, ' +
      'digits or "-", compared case-insensitively; users sharing one are paired first, after a few seconds anyone. ' +
      'Subscribe to strangerEvents first to receive MATCHED.',
  })
  async findStranger(
    @Arg('interests', () => [String], { nullable: true }) interests: string[] | null,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    await this.limits?.consumeFor('findStranger', ctx);
    return this.strangers.find(ctx.user, interests);
  }

  @Mutation(() => Boolean, { description: 'Leaves the stranger queue; false when the viewer was not waiting' })
  leaveStrangerQueue(@Ctx() ctx: Context): Promise<boolean> {
    return this.strangers.leaveQueue(ctx.user);
  }

  @Mutation(() => Boolean, {
    description:
      'Ends the chat with this stranger: they receive ENDED, neither can message the other any more, and the two ' +
      'are never paired again. False when the viewer was not paired with them.',
  })
  endStrangerChat(@Arg('with', () => ID) withId: string, @Ctx() ctx: Context): Promise<boolean> {
    return this.strangers.endChat(ctx.user, withId);
  }

  @Query(() => StrangerChat, { nullable: true, description: 'The viewer’s current stranger chat, if any' })
  async strangerChat(@Ctx() ctx: Context): Promise<{ with: UserRecord; sharedInterests: string[] } | null> {
    const current = await this.strangers.current(ctx.user);
    return current ? { with: current.user, sharedInterests: current.shared } : null;
  }

  @Subscription(() => StrangerEvent, {
    description: 'The viewer’s stranger events: MATCHED (with whom, shared interests) and ENDED',
    subscribe: ({ context }) => live(context, 'strangers', {}),
  })
  strangerEvents(@Root() payload: StrangerPayload): StrangerPayload {
    return payload;
  }
}
