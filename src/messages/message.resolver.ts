import { Arg, Args, Ctx, FieldResolver, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { live, type Context } from '../context';
import { GHOST_USER } from '../lifecycle/ghost';
import type { RateLimits } from '../security/rate-limit';
import { User, type UserRecord } from '../users/user.type';
import { encodeCursor } from './conversation';
import type { MessagePayload } from './message.events';
import { MessageAddedArgs, MessagesArgs, SendMessageInput } from './message.input';
import { OPEN_POLICY, type MessagePolicy } from './message.policy';
import type { MessageService } from './message.service';
import {
  Message,
  MessageConnection,
  toConnection,
  toMessageView,
  type MessageConnectionView,
  type MessageView,
} from './message.type';

@Resolver(() => Message)
export class MessageResolver {
  constructor(
    private readonly messageService: MessageService,
    private readonly limits: RateLimits,
    /** Abuse control (blocks, bans, reports, content rules); see message.policy.ts. */
    private readonly policy: MessagePolicy = OPEN_POLICY,
  ) {}

  @Query(() => MessageConnection, {
    description: 'A Relay page of a conversation, oldest first. Neither first nor last: the newest 50.',
  })
  async messages(@Args() args: MessagesArgs, @Ctx() ctx: Context): Promise<MessageConnectionView> {
    const { key } = await this.messageService.resolveConversation(ctx.user, args);
    const page = await this.messageService.page(key, args);
    const visible = await this.policy.visible(ctx.user.id, page.messages);
    return toConnection(
      visible.map((m) => toMessageView(m)),
      page.hasPreviousPage,
      page.hasNextPage,
    );
  }

  @Mutation(() => Message, {
    description: 'Stores the message, then publishes it; returns after the database acknowledged the write.',
  })
  async sendMessage(
    @Arg('input', () => SendMessageInput) input: SendMessageInput,
    @Ctx() ctx: Context,
  ): Promise<MessageView> {
    await this.limits.consumeFor('sendMessage', ctx);
    // Not awaited: the send reads what it needs meanwhile, and writes only once it passed.
    const admission = this.policy.admit(ctx, {
      text: input.text,
      to: input.to ?? null,
      room: input.room ?? null,
    });
    const { message, sender, recipient } = await this.messageService.send(ctx.user, input, admission);
    return toMessageView(message, sender, recipient);
  }

  @Subscription(() => Message, {
    description:
      'Live messages of a conversation. With `after` (an edge cursor or a message id) it first replays every ' +
      'message after that point, in order, then continues live, with no gap and no duplicate.',
    subscribe: ({ args, context }) => live(context, 'messages', args),
  })
  messageAdded(@Root() payload: MessagePayload, @Args() _args: MessageAddedArgs): MessageView {
    return toMessageView(payload.message, payload.sender, payload.recipient);
  }

  @FieldResolver(() => User)
  async sender(@Root() m: MessageView, @Ctx() ctx: Context): Promise<UserRecord> {
    if (m.senderUser) return m.senderUser;
    // A sender who erased their data (deleteMyData) left tombstones attributed to nobody.
    if (m.senderId === GHOST_USER.id) return GHOST_USER;
    const u = await ctx.loaders.users.load(m.senderId);
    if (!u) throw new Error(`message ${m.id} has an unknown sender`);
    return u;
  }

  @FieldResolver(() => User, { nullable: true })
  async recipient(@Root() m: MessageView, @Ctx() ctx: Context): Promise<UserRecord | null> {
    if (!m.recipientId) return null;
    if (m.recipientUser) return m.recipientUser;
    return ctx.loaders.users.load(m.recipientId);
  }

  @FieldResolver(() => String)
  cursor(@Root() m: MessageView): string {
    return encodeCursor(m.seq);
  }

  @FieldResolver(() => Boolean)
  mine(@Root() m: MessageView, @Ctx() ctx: Context): boolean {
    return m.senderId === ctx.user.id;
  }
}
