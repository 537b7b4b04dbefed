import { Field, ID, ObjectType } from 'type-graphql';

/** What resolvers pass around for a user: the stored identity, without presence. */
export interface UserRecord {
  id: string;
  username: string;
  avatarSeed: string;
  createdAt: Date;
  lastSeenAt: Date | null;
}

@ObjectType({ description: 'An anonymous identity, made up by the server on first contact.' })
export class User {
  @Field(() => ID)
  id!: string;

  @Field({ description: 'faker-made, unique across all users' })
  username!: string;

  @Field({ description: 'Generated SVG avatar; absolute when PUBLIC_URL is set, else a path on this server' })
  avatarUrl!: string;

  @Field({ description: 'True while at least one of the user’s WebSocket connections is open (plus a grace period)' })
  online!: boolean;

  @Field(() => Date, { nullable: true, description: 'When the user was last online; null if never' })
  lastSeenAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;
}
