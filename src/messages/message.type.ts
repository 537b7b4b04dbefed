import { Extensions, Field, ID, ObjectType } from 'type-graphql';
import { VIEWER_DEPENDENT } from '../realtime/plan';
import { User, type UserRecord } from '../users/user.type';
import { encodeCursor } from './conversation';
import type { MessageDoc } from './message.model';

/** What resolvers pass around for a message: the stored document plus users already known. */
export interface MessageView {
  id: string;
  conversation: string;
  seq: number;
  text: string;
  senderId: string;
  recipientId: string | null;
  clientId: string | null;
  createdAt: Date;
  readAt: Date | null;
  // Lifecycle (resolved in src/lifecycle/lifecycle.resolver.ts).
  editedAt: Date | null;
  deletedAt: Date | null;
  replyToId: string | null;
  reactions: Array<{ emoji: string; count: number }>;
  expiresAt: Date | null;
  /** Abuse control: hidden by reports (see Message.hidden). */
  hidden: boolean;
  /** Set on messageUpdated events: the position of this change in the conversation's update sequence. */
  updateSeq?: number;
  /** Set when the sender/recipient were at hand (publishing, replay), saving a lookup. */
  senderUser?: UserRecord;
  recipientUser?: UserRecord | null;
}

export function toMessageView(doc: MessageDoc, sender?: UserRecord, recipient?: UserRecord | null): MessageView {
  return {
    id: doc._id,
    conversation: doc.conversation,
    seq: doc.seq,
    text: doc.text,
    senderId: doc.sender,
    recipientId: doc.recipient,
    clientId: doc.clientId,
    createdAt: doc.createdAt,
    readAt: doc.readAt ?? null,
    editedAt: doc.editedAt ?? null,
    deletedAt: doc.deletedAt ?? null,
    replyToId: doc.deletedAt ? null : (doc.replyTo ?? null),
    reactions: doc.deletedAt ? [] : (doc.reactions ?? []),
    expiresAt: doc.expiresAt ?? null,
    hidden: !!doc.hiddenAt && !doc.deletedAt,
    senderUser: sender,
    recipientUser: recipient,
  };
}

@ObjectType()
export class Message {
  @Field(() => ID, { description: 'Stable and unique; also accepted as `after` by messageAdded' })
  id!: string;

  @Field({ description: 'As sent, trimmed, without control characters (clients escape it for display)' })
  text!: string;

  @Field(() => User)
  sender!: User;

  @Field(() => User, { nullable: true, description: 'null: a lobby message' })
  recipient!: User | null;

  @Field(() => String, { nullable: true, description: 'The sender’s idempotency key, echoed back' })
  clientId!: string | null;

  @Field(() => Date, { description: 'Server time' })
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: 'Direct messages: when the recipient read it' })
  readAt!: Date | null;

  @Field({
    description:
      'Hidden by reports (REPORT_HIDE_THRESHOLD) until a moderator decides. Its sender still sees it whole; ' +
      'everyone else no longer finds it in history, and receives it on messageUpdated with `hidden: true` and ' +
      'empty text (remove it), then whole again with `hidden: false` if a moderator clears the report.',
  })
  hidden!: boolean;

  @Field({ description: 'A cursor for this message (same as its edge cursor in `messages`)' })
  cursor!: string;

  @Field({ description: 'True when the viewer sent this message' })
  @Extensions({ [VIEWER_DEPENDENT]: true })
  mine!: boolean;
}

@ObjectType()
export class MessageEdge {
  @Field()
  cursor!: string;

  @Field(() => Message)
  node!: Message;
}

@ObjectType()
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field()
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

@ObjectType()
export class MessageConnection {
  @Field(() => [MessageEdge])
  edges!: MessageEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

export interface MessageConnectionView {
  edges: Array<{ cursor: string; node: MessageView }>;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

export function toConnection(
  views: MessageView[],
  hasPreviousPage: boolean,
  hasNextPage: boolean,
): MessageConnectionView {
  const edges = views.map((node) => ({ cursor: encodeCursor(node.seq), node }));
  return {
    edges,
    pageInfo: {
      hasPreviousPage,
      hasNextPage,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
  };
}
