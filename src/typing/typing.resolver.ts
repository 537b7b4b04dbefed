import { Args, ArgsType, Ctx, Field, ID, Mutation, Resolver, Root, Subscription } from 'type-graphql';
import { live, type Context } from '../context';
import type { MessageService } from '../messages/message.service';
import type { TypingPayload } from './typing.events';
import type { TypingService } from './typing.service';
import { TypingEvent } from './typing.type';

@ArgsType()
class TypingArgs {
  @Field(() => ID, { nullable: true, description: 'The other user of a direct conversation; omitted: the lobby' })
  with?: string | null;

  @Field(() => ID, { nullable: true, description: 'A room’s id (not with `with`)' })
  room?: string | null;
}

@ArgsType()
class SetTypingArgs extends TypingArgs {
  @Field()
  typing!: boolean;
}

@Resolver()
export class TypingResolver {
  constructor(
    private readonly messages: Pick<MessageService, 'resolveConversation'>,
    private readonly typingService: TypingService,
  ) {}

  @Mutation(() => Boolean, {
    description:
      'Tells the conversation the viewer is (not) typing. A true that is not renewed within 5 s expires; ' +
      'renew every 2-3 s while typing. Returns true when the state was published, false for a coalesced renewal.',
  })
  async setTyping(@Args() args: SetTypingArgs, @Ctx() ctx: Context): Promise<boolean> {
    // Typing is a kind of writing: a room's non-members and ended stranger chats may not.
    const { key } = await this.messages.resolveConversation(ctx.user, args, 'write');
    return this.typingService.set(ctx.user, key, args.typing, ctx.ip);
  }

  @Subscription(() => TypingEvent, {
    description:
      'Typing in a conversation: in the lobby everyone else’s, in a direct conversation the other user’s. ' +
      'Never your own.',
    subscribe: ({ args, context }) => live(context, 'typing', args),
  })
  typing(@Root() payload: TypingPayload, @Args() _args: TypingArgs): TypingPayload {
    return payload;
  }
}
