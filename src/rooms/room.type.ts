import { Extensions, Field, ID, Int, ObjectType } from 'type-graphql';
import { PageInfo } from '../messages/message.type';
import { VIEWER_DEPENDENT } from '../realtime/plan';
import { User } from '../users/user.type';

@ObjectType()
export class RoomMemberEdge {
  @Field()
  cursor!: string;

  @Field(() => User)
  node!: User;
}

@ObjectType()
export class RoomMemberConnection {
  @Field(() => [RoomMemberEdge])
  edges!: RoomMemberEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType({ description: 'A topic room: public rooms are listed by `rooms`, private ones are reached by slug only' })
export class Room {
  @Field(() => ID)
  id!: string;

  @Field({
    description: 'Unique, URL-safe; a private room’s slug is its invite (unguessable, at least 10 random characters)',
  })
  slug!: string;

  @Field({ description: 'Trimmed, 1..80 characters' })
  title!: string;

  @Field({ description: 'Public rooms are listed by `rooms`; private ones are reached by slug only' })
  public!: boolean;

  @Field(() => Int, { description: 'Exact' })
  memberCount!: number;

  @Field({ description: 'Whether the viewer is a member' })
  @Extensions({ [VIEWER_DEPENDENT]: true })
  joined!: boolean;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Int, { nullable: true, description: 'Disappearing messages; null: none' })
  messageTtlSeconds!: number | null;

  @Field(() => Int, { description: 'How many of its members are online' })
  online!: number;

  @Field(() => RoomMemberConnection, { description: 'The members who are online, a page at a time' })
  onlineMembers!: RoomMemberConnection;
}

@ObjectType()
export class RoomEdge {
  @Field()
  cursor!: string;

  @Field(() => Room)
  node!: Room;
}

@ObjectType()
export class RoomConnection {
  @Field(() => [RoomEdge])
  edges!: RoomEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
