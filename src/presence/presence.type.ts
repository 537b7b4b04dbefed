import { Field, ObjectType } from 'type-graphql';
import { User } from '../users/user.type';

@ObjectType({ description: 'A user went online or offline.' })
export class PresenceEvent {
  @Field(() => User)
  user!: User;

  @Field()
  online!: boolean;
}
