import { ArgsType, Field, InputType, Int } from 'type-graphql';

@InputType()
export class CreateRoomInput {
  @Field({ description: 'Trimmed, 1..80 characters' })
  title!: string;

  @Field({ description: 'Public rooms are listed by `rooms`; private ones are reached by their slug only' })
  public!: boolean;

  @Field(() => Int, { nullable: true, description: 'Disappearing messages, 30..2592000 seconds; null: none' })
  messageTtlSeconds?: number | null;
}

@ArgsType()
export class RoomsArgs {
  @Field(() => Int, { nullable: true, description: 'Page size (default 20, at most 100)' })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;
}

@ArgsType()
export class OnlineMembersArgs {
  @Field(() => Int, { nullable: true, description: 'Page size (default 50, at most 100)' })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;
}
