import 'reflect-metadata';
import './sessions/session.types';
import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType } from 'type-graphql';
import { ConversationResolver } from './conversations/conversation.resolver';
import { MessageResolver } from './messages/message.resolver';
import { PresenceResolver } from './presence/presence.resolver';
import { TypingResolver } from './typing/typing.resolver';
import type { Services } from './services';
import { UserResolver } from './users/user.resolver';

export const resolvers = [
  UserResolver,
  MessageResolver,
  ConversationResolver,
  PresenceResolver,
  TypingResolver,
] as const;

/**
 * Builds the executable schema. Resolver instances get this server's services through
 * the container (one container per server, so several servers can share a process).
 * Services are optional only for printing the schema.
 */
export async function createSchema(services?: Services): Promise<GraphQLSchema> {
  const instances = new Map<unknown, unknown>();
  const container: ContainerType = {
    get(cls: new (s: Services) => unknown) {
      let r = instances.get(cls);
      if (!r) instances.set(cls, (r = new cls(services!)));
      return r;
    },
  };
  return buildSchema({
    resolvers: [...resolvers],
    container,
    // Inputs are validated by the services (one place, same rules over HTTP and WebSocket).
    validate: false,
    // Every subscription brings its own `subscribe` (RealtimeService); type-graphql still
    // insists on a pub/sub, so give it one that fails loudly if anything ever used it.
    pubSub: {
      publish() {
        throw new Error('Publish through services.pubsub, not type-graphql');
      },
      subscribe() {
        throw new Error('Subscribe through RealtimeService, not type-graphql topics');
      },
    },
  });
}

/** The SDL committed as schema.graphql. */
export async function printSdl(): Promise<string> {
  return printSchema(await createSchema()) + '\n';
}
