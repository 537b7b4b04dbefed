import { Field, Int, ObjectType } from 'type-graphql';
import { Message } from '../messages/message.type';
import { User } from '../users/user.type';

@ObjectType({ description: 'A direct conversation of the viewer.' })
export class Conversation {
  @Field(() => User, { description: 'The other user' })
  with!: User;

  @Field(() => Message, { nullable: true })
  lastMessage!: Message | null;

  @Field(() => Int, { description: 'Messages from the other user the viewer has not marked read' })
  unreadCount!: number;
}

@ObjectType({ description: 'A reader marked direct messages read (see markRead).' })
export class ReadReceipt {
  @Field(() => User, { description: 'Who read (the recipient of the messages)' })
  reader!: User;

  @Field(() => Message, { description: 'Every message from the other user up to and including this one is read' })
  upTo!: Message;

  @Field(() => Int, { description: 'How many messages this markRead changed' })
  count!: number;

  @Field(() => Date)
  readAt!: Date;
}
