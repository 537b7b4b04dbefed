import {
  Args,
  ArgsType,
  Ctx,
  Field,
  FieldResolver,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { live, type Context } from '../context';
import type { MessageService } from '../messages/message.service';
import { toMessageView, type MessageView } from '../messages/message.type';
import type { UserRecord } from '../users/user.type';
import type { InboxPayload, ReadPayload } from './conversation.events';
import { CONVERSATIONS_MAX, type ConversationService, type ConversationSummary } from './conversation.service';
import { Conversation, ReadReceipt } from './conversation.type';

@ArgsType()
class ReadArgs {
  @Field(() => ID, { description: 'The other user of the direct conversation' })
  with!: string;
}

@ArgsType()
class MarkReadArgs extends ReadArgs {
  @Field(() => ID, { description: 'A message id of this conversation' })
  upTo!: string;
}

@Resolver(() => Conversation)
export class ConversationResolver {
  constructor(
    private readonly conversationService: ConversationService,
    private readonly messages: Pick<MessageService, 'conversationWith'>,
  ) {}

  @Query(() => [Conversation], {
    description: `The viewer’s direct conversations, newest activity first: at most ${CONVERSATIONS_MAX}.`,
  })
  async conversations(@Ctx() ctx: Context): Promise<ConversationSummary[]> {
    return (await this.conversationService.list(ctx.user)).slice(0, CONVERSATIONS_MAX);
  }

  @FieldResolver({ nullable: true })
  lastMessage(@Root() c: ConversationSummary): MessageView | null {
    return c.lastMessage ? toMessageView(c.lastMessage) : null;
  }

  @Subscription(() => Conversation, {
    description:
      'The viewer’s direct conversations as they change (a message stored, a read marker moved), as ' +
      '`conversations` would show them: live unread counts and new conversations without polling.',
    subscribe: ({ context }) => live(context, 'inbox', {}),
  })
  conversationUpdated(@Root() p: InboxPayload): ConversationSummary {
    return p.summary;
  }

  @Mutation(() => Int, {
    description:
      'Marks the direct messages from `with` to the viewer up to and including `upTo` as read; ' +
      'returns how many changed. Both users’ messagesRead subscriptions receive a ReadReceipt.',
  })
  async markRead(@Args() args: MarkReadArgs, @Ctx() ctx: Context): Promise<number> {
    const { other } = await this.messages.conversationWith(ctx.user, args.with);
    return this.conversationService.markRead(ctx.user, other!, args.upTo);
  }

  @Subscription(() => ReadReceipt, {
    description:
      'Read receipts of a direct conversation: the sender learns that the other user read up to a message ' +
      '(and the reader’s other tabs can update unread counts).',
    subscribe: ({ args, context }) => live(context, 'read', args),
  })
  messagesRead(
    @Root() p: ReadPayload,
    @Args() _args: ReadArgs,
  ): { reader: UserRecord; upTo: MessageView; count: number; readAt: Date } {
    return { reader: p.reader, upTo: toMessageView(p.upTo), count: p.count, readAt: p.at };
  }
}
