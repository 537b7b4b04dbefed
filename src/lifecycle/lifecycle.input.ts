import { ArgsType, Field, ID, Int } from 'type-graphql';

/** A conversation: at most one of `with` and `room`; neither is the lobby. */
@ArgsType()
export class ConversationArgs {
  @Field(() => ID, { nullable: true, description: 'The other user of a direct conversation' })
  with?: string | null;

  @Field(() => ID, { nullable: true, description: 'A room' })
  room?: string | null;
}

@ArgsType()
export class MessageUpdatedArgs extends ConversationArgs {
  @Field(() => String, {
    nullable: true,
    description:
      'An update cursor (`Message.updateCursor` of the last update seen, or `messageUpdatesCursor`): replays ' +
      'every message changed after that point, in its current state, then continues live',
  })
  after?: string | null;
}

@ArgsType()
export class SetMessageTtlArgs extends ConversationArgs {
  @Field(() => Int, { nullable: true, description: '30..2592000; null turns disappearing messages off' })
  seconds?: number | null;
}

@ArgsType()
export class EditMessageArgs {
  @Field(() => ID)
  id!: string;

  @Field({ description: 'Same rules as sending' })
  text!: string;
}

@ArgsType()
export class MessageIdArgs {
  @Field(() => ID)
  id!: string;
}

@ArgsType()
export class ReactArgs {
  @Field(() => ID)
  id!: string;

  @Field({ description: 'A single emoji (one grapheme cluster)' })
  emoji!: string;

  @Field({ description: 'true adds the viewer’s reaction, false removes it; repeating is a no-op' })
  on!: boolean;
}
