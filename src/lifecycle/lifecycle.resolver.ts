/**
 * The message lifecycle in the schema: editMessage, deleteMessage, react, setMessageTtl,
 * deleteMyData, messageUpdated, and the lifecycle fields of Message, Reaction and
 * Conversation. Thin: arguments in, a service call, a view out.
 */
import { Args, Ctx, Extensions, FieldResolver, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { live, type Context } from '../context';
import { ForbiddenError } from '../errors';
import { VIEWER_DEPENDENT } from '../realtime/plan';
import type { ConversationSummary } from '../conversations/conversation.service';
import { Conversation } from '../conversations/conversation.type';
import { directKey, roomKey } from '../messages/conversation';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageService } from '../messages/message.service';
import type { MessageStore } from '../messages/message.store';
import { Message, toMessageView, type MessageView } from '../messages/message.type';
import { conversationOf } from './conversation-of';
import type { ForgetService } from './forget.service';
import type { UpdatePayload } from './lifecycle.events';
import {
  ConversationArgs,
  EditMessageArgs,
  MessageIdArgs,
  MessageUpdatedArgs,
  ReactArgs,
  SetMessageTtlArgs,
} from './lifecycle.input';
import type { Actor, LifecycleService } from './lifecycle.service';
import { Reaction, type ReactionView } from './lifecycle.type';
import type { ConversationSettings } from './settings';
import { encodeUpdateCursor, type UpdateLog } from './update-log';
import type { ModeratorAuth } from '../moderation/moderator';
import type { ReportService } from '../moderation/report.service';
import type { RoomService } from '../rooms/room.service';
import type { RoomView } from '../rooms/room.resolver';
import { Room } from '../rooms/room.type';

const view = (p: UpdatePayload): MessageView => ({
  ...toMessageView(p.message, p.sender, p.recipient),
  ...(p.n > 0 ? { updateSeq: p.n } : {}),
});

/** Moderation as the lifecycle needs it: who is a moderator, and closing a report on deletion. */
export interface LifecycleModeration {
  moderators: Pick<ModeratorAuth, 'identify'>;
  reports: Pick<ReportService, 'closeAsDeleted'>;
}

@Resolver(() => Message)
export class LifecycleResolver {
  constructor(
    private readonly lifecycle: LifecycleService,
    private readonly forgetService: ForgetService,
    private readonly settings: ConversationSettings,
    private readonly messages: Pick<MessageService, 'resolveConversation'>,
    private readonly store: Pick<MessageStore, 'get'>,
    private readonly log: Pick<UpdateLog, 'head'>,
    private readonly expiry: MessageExpiry,
    private readonly moderation?: LifecycleModeration,
    /** Who created a room: only they may set its disappearing messages. */
    private readonly rooms?: Pick<RoomService, 'get'>,
  ) {}

  /** The viewer as an actor: a moderator when the request carries a valid moderator token. */
  private actorOf(ctx: Context): Actor & { label?: string } {
    const moderator = this.moderation?.moderators.identify(ctx.moderatorToken);
    return moderator
      ? { id: ctx.user.id, role: 'moderator', label: moderator.label }
      : { id: ctx.user.id, role: 'user' };
  }

  @Mutation(() => Message, {
    description: `The sender only, within EDIT_WINDOW_SECONDS of sending; same text rules as sending. Sets editedAt.`,
  })
  async editMessage(@Args() args: EditMessageArgs, @Ctx() ctx: Context): Promise<MessageView> {
    return view(await this.lifecycle.edit({ id: ctx.user.id, role: 'user' }, args.id, args.text));
  }

  @Mutation(() => Message, {
    description: 'The sender (or a moderator), at any time: a tombstone keeps the place; the text is erased.',
  })
  async deleteMessage(@Args() args: MessageIdArgs, @Ctx() ctx: Context): Promise<MessageView> {
    const actor = this.actorOf(ctx);
    const deleted = await this.lifecycle.delete(actor, args.id);
    // A moderator's deletion decides the message's reports and is audited under the token's label.
    if (actor.label && deleted.message.sender !== actor.id) {
      await this.moderation?.reports.closeAsDeleted(actor.label, deleted.message._id, deleted.message.sender);
    }
    return view(deleted);
  }

  @Mutation(() => Message, { description: 'Adds or removes the viewer’s reaction (one emoji; at most 20 distinct).' })
  async react(@Args() args: ReactArgs, @Ctx() ctx: Context): Promise<MessageView> {
    return view(await this.lifecycle.react(ctx.user, args.id, args.emoji, args.on));
  }

  @Mutation(() => Boolean, {
    description:
      'Disappearing messages: messages sent afterwards expire `seconds` after sending (30..2592000; null: off). ' +
      'In a direct conversation either user may set it, in a room only its creator.',
  })
  async setMessageTtl(@Args() args: SetMessageTtlArgs, @Ctx() ctx: Context): Promise<boolean> {
    // A private room the viewer is not in is BAD_USER_INPUT, as for an unknown room.
    const { key, other, roomId } = await conversationOf(this.messages, ctx.user, args);
    if (roomId) {
      const room = await this.rooms?.get(roomId);
      if (!room || room.createdBy !== ctx.user.id) {
        throw new ForbiddenError('Only the room’s creator may set its disappearing messages');
      }
    } else if (!other) {
      throw new ForbiddenError('Disappearing messages are set per direct conversation or room, not for the lobby');
    }
    await this.settings.setTtl(key, args.seconds ?? null, ctx.user.id);
    return true;
  }

  @Mutation(() => Boolean, {
    description:
      'Erases the viewer: their messages become tombstones (text erased), their reactions, read markers and ' +
      'conversation list go, their sessions end (WebSockets close with 4001) and the user is deleted. The next ' +
      'request starts a new identity.',
  })
  async deleteMyData(@Ctx() ctx: Context): Promise<boolean> {
    await this.forgetService.forget(ctx.user, ctx.sessionId);
    return true;
  }

  @Query(() => String, {
    description:
      'The update cursor of the conversation now: read it before loading history, and pass it as ' +
      '`messageUpdated(after:)` to receive every change made since.',
  })
  async messageUpdatesCursor(@Args() args: ConversationArgs, @Ctx() ctx: Context): Promise<string> {
    const { key } = await conversationOf(this.messages, ctx.user, args);
    return encodeUpdateCursor(await this.log.head(key));
  }

  @Subscription(() => Message, {
    description:
      'Edits, deletions and reaction changes of messages of a conversation, in order, each message in its state ' +
      'after the change. With `after` (an update cursor) it first replays every message changed after that point.',
    subscribe: ({ args, context }) => live(context, 'messageUpdates', args),
  })
  messageUpdated(@Root() payload: UpdatePayload, @Args() _args: MessageUpdatedArgs): MessageView {
    return view(payload);
  }

  @FieldResolver(() => Date, { nullable: true, description: 'Last edit' })
  editedAt(@Root() m: MessageView): Date | null {
    return m.editedAt;
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description: 'Deleted: text is "", reactions empty, replyTo null',
  })
  deletedAt(@Root() m: MessageView): Date | null {
    return m.deletedAt;
  }

  @FieldResolver(() => Date, { nullable: true, description: 'Disappearing messages: gone from then on' })
  expiresAt(@Root() m: MessageView): Date | null {
    return m.expiresAt;
  }

  @FieldResolver(() => Message, {
    nullable: true,
    description: 'The message this one answers (a tombstone if it was deleted; null once it expired)',
  })
  async replyTo(@Root() m: MessageView): Promise<MessageView | null> {
    if (!m.replyToId || m.deletedAt) return null;
    const doc = await this.store.get(m.replyToId);
    // Abuse control: a reply (rendered once for all its viewers) never carries what only the
    // quoted message's sender may see: a shadow message is not there, a hidden one is redacted.
    if (!doc || !this.expiry.isVisible(doc) || doc.shadow === true) return null;
    const view = toMessageView(doc);
    return view.hidden ? { ...view, text: '', reactions: [], replyToId: null, clientId: null } : view;
  }

  @FieldResolver(() => [Reaction])
  reactions(@Root() m: MessageView): ReactionView[] {
    if (m.deletedAt) return [];
    return m.reactions.map((r) => ({ messageId: m.id, emoji: r.emoji, count: r.count }));
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'On messageUpdated events: where this change is in the update sequence (pass it as `after`)',
  })
  updateCursor(@Root() m: MessageView): string | null {
    return m.updateSeq ? encodeUpdateCursor(m.updateSeq) : null;
  }
}

@Resolver(() => Reaction)
export class ReactionResolver {
  constructor(private readonly lifecycle: Pick<LifecycleService, 'mine'>) {}

  @FieldResolver(() => Boolean)
  async mine(@Root() r: ReactionView, @Ctx() ctx: Context): Promise<boolean> {
    return (await this.lifecycle.mine(ctx.user.id, r.messageId, [r.emoji])).has(r.emoji);
  }
}

@Resolver(() => Conversation)
export class ConversationTtlResolver {
  constructor(private readonly settings: Pick<ConversationSettings, 'ttlOf'>) {}

  @FieldResolver(() => Int, { nullable: true, description: 'Disappearing messages: seconds, or null for none' })
  // Keyed by the viewer and the other user: rendered per viewer in conversationUpdated.
  @Extensions({ [VIEWER_DEPENDENT]: true })
  messageTtlSeconds(@Root() c: ConversationSummary, @Ctx() ctx: Context): Promise<number | null> {
    return this.settings.ttlOf(directKey(ctx.user.id, c.with.id));
  }
}

@Resolver(() => Room)
export class RoomTtlResolver {
  constructor(private readonly settings: Pick<ConversationSettings, 'ttlOf'>) {}

  @FieldResolver(() => Int, {
    nullable: true,
    description: 'Disappearing messages; null: none (set at creation or by the creator with setMessageTtl)',
  })
  messageTtlSeconds(@Root() room: RoomView): Promise<number | null> {
    return this.settings.ttlOf(roomKey(room.id));
  }
}
