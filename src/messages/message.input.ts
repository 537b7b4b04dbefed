import { ArgsType, Field, ID, InputType, Int } from 'type-graphql';

@InputType()
export class SendMessageInput {
  @Field({ description: 'Trimmed; 1..2000 characters after trimming' })
  text!: string;

  @Field(() => ID, { nullable: true, description: 'A user’s id: a direct message; omitted: the lobby' })
  to?: string | null;

  @Field(() => ID, { nullable: true, description: 'A room’s id (not with `to`): a message in that room' })
  room?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'Optional, 1..64 characters; a retry with the same key returns the first message',
  })
  clientId?: string | null;
}

@ArgsType()
export class MessagesArgs {
  @Field(() => ID, { nullable: true, description: 'The other user of a direct conversation; omitted: the lobby' })
  with?: string | null;

  @Field(() => ID, { nullable: true, description: 'A room’s id (not with `with`)' })
  room?: string | null;

  @Field(() => Int, { nullable: true, description: 'The oldest n after `after` (at most 100)' })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;

  @Field(() => Int, { nullable: true, description: 'The newest n before `before` (at most 100); default 50' })
  last?: number | null;

  @Field(() => String, { nullable: true })
  before?: string | null;
}

@ArgsType()
export class MessageAddedArgs {
  @Field(() => ID, { nullable: true })
  with?: string | null;

  @Field(() => ID, { nullable: true, description: 'A room’s id (not with `with`)' })
  room?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'Replay every message after this edge cursor or message id first, then continue live',
  })
  after?: string | null;
}
