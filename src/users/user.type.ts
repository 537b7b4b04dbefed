import { Field, ID, Int, ObjectType } from 'type-graphql';

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

@ObjectType({
  description:
    'A proof-of-work challenge (ALTCHA) for a new identity: solve it with altcha-lib and send ' +
    'base64(JSON({ challenge, solution })) in the X-Anonymo-Pow header of the request that creates ' +
    'the identity (a cookieless first request, or resetIdentity), or as the `altcha` query parameter ' +
    'of the WebSocket URL. Spent once; expires.',
})
export class IdentityChallenge {
  @Field({
    description: 'Whether a new identity from this network needs a solution now (POW_MODE=on, or auto under pressure)',
  })
  required!: boolean;

  @Field({ description: 'The ALTCHA challenge as JSON: { parameters, signature }' })
  challenge!: string;

  @Field(() => Date)
  expiresAt!: Date;

  @Field(() => Int, { description: 'The largest counter the challenge may take (its cost in SHA-256 attempts)' })
  difficulty!: number;
}
