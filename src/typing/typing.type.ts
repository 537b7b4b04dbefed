import { Field, ObjectType } from 'type-graphql';
import { User } from '../users/user.type';

@ObjectType({ description: 'Someone started or stopped typing. Never stored.' })
export class TypingEvent {
  @Field(() => User)
  user!: User;

  @Field()
  typing!: boolean;
}
