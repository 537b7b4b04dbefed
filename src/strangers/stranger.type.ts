import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { User } from '../users/user.type';

export enum StrangerEventKind {
  MATCHED = 'MATCHED',
  ENDED = 'ENDED',
}
registerEnumType(StrangerEventKind, {
  name: 'StrangerEventKind',
  description: 'MATCHED: paired with a stranger; ENDED: the stranger ended the chat',
});

@ObjectType({ description: 'Something happened in "talk to a stranger"' })
export class StrangerEvent {
  @Field(() => StrangerEventKind)
  kind!: StrangerEventKind;

  @Field(() => User, { description: 'The stranger' })
  with!: User;

  @Field(() => [String], { description: 'The interests both named (lower-case); empty for ENDED' })
  sharedInterests!: string[];
}

@ObjectType({ description: 'The viewer’s current stranger chat' })
export class StrangerChat {
  @Field(() => User)
  with!: User;

  @Field(() => [String])
  sharedInterests!: string[];
}
