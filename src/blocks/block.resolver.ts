import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../context';
import { BadUserInputError } from '../errors';
import { parseUserId, type UserService } from '../users/user.service';
import { User, type UserRecord } from '../users/user.type';
import type { BlockService } from './block.service';

@Resolver()
export class BlockResolver {
  constructor(
    private readonly blocks: BlockService,
    private readonly users: Pick<UserService, 'get' | 'getMany'>,
  ) {}

  @Query(() => [User], { description: 'The users the viewer blocks, most recently blocked first.' })
  async blockedUsers(@Ctx() ctx: Context): Promise<UserRecord[]> {
    const ids = [...(await this.blocks.blockedBy(ctx.user.id))].reverse();
    return (await this.users.getMany(ids)).filter((u): u is UserRecord => u !== null);
  }

  @Mutation(() => Boolean, {
    description:
      'From now on their direct messages to the viewer are refused (FORBIDDEN) and the viewer no longer sees ' +
      'their messages or typing anywhere, in history or live. Repeating is a no-op.',
  })
  async blockUser(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<boolean> {
    await this.known(id);
    return this.blocks.set(ctx.user.id, id, true);
  }

  @Mutation(() => Boolean, { description: 'Undoes blockUser for the future. Repeating is a no-op.' })
  async unblockUser(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<boolean> {
    parseUserId(id, 'id');
    return this.blocks.set(ctx.user.id, id, false);
  }

  private async known(id: string): Promise<void> {
    parseUserId(id, 'id');
    if (!(await this.users.get(id))) throw new BadUserInputError('id is not a known user', 'id');
  }
}
