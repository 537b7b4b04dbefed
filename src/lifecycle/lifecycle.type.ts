import { Extensions, Field, Int, ObjectType } from 'type-graphql';
import { VIEWER_DEPENDENT } from '../realtime/plan';

/** A reaction as resolvers pass it on: the aggregate entry plus the message it belongs to. */
export interface ReactionView {
  messageId: string;
  emoji: string;
  count: number;
}

@ObjectType({ description: 'One emoji on a message: how many reacted with it, and whether the viewer did' })
export class Reaction {
  @Field()
  emoji!: string;

  @Field(() => Int)
  count!: number;

  @Field({ description: 'True when the viewer reacted with this emoji' })
  @Extensions({ [VIEWER_DEPENDENT]: true })
  mine!: boolean;
}
