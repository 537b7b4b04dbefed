import 'reflect-metadata';
import './sessions/session.types';
import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType } from 'type-graphql';
import { BlockResolver } from './blocks/block.resolver';
import { ConversationResolver } from './conversations/conversation.resolver';
import {
  ConversationTtlResolver,
  LifecycleResolver,
  ReactionResolver,
  RoomTtlResolver,
} from './lifecycle/lifecycle.resolver';
import { ModerationResolver } from './moderation/moderation.resolver';
import { MessageResolver } from './messages/message.resolver';
import { PresenceResolver } from './presence/presence.resolver';
import { MessageRoomResolver, RoomResolver } from './rooms/room.resolver';
import { StrangerResolver } from './strangers/stranger.resolver';
import { TypingResolver } from './typing/typing.resolver';
import { UserResolver } from './users/user.resolver';

export const resolverClasses = [
  UserResolver,
  MessageResolver,
  ConversationResolver,
  PresenceResolver,
  TypingResolver,
  LifecycleResolver,
  ReactionResolver,
  ConversationTtlResolver,
  RoomResolver,
  MessageRoomResolver,
  RoomTtlResolver,
  StrangerResolver,
  BlockResolver,
  ModerationResolver,
] as const;

/**
 * Builds the executable schema. type-graphql asks the container for a resolver instance when a
 * field resolves; ours hands out the instances the composition root built with their own
 * narrow dependencies (one set per server, so several servers can share a process).
 * Without instances the schema can only be printed.
 */
export async function createSchema(instances?: readonly object[]): Promise<GraphQLSchema> {
  const byClass = new Map<unknown, unknown>((instances ?? []).map((r) => [r.constructor, r]));
  const container: ContainerType = {
    get(cls) {
      const r = byClass.get(cls);
      if (!r) throw new Error(`No resolver instance for ${(cls as { name?: string }).name ?? 'a class'}`);
      return r;
    },
  };
  return buildSchema({
    resolvers: [...resolverClasses],
    container,
    // Inputs are validated by the services (one place, same rules over HTTP and WebSocket).
    validate: false,
    // Every subscription brings its own `subscribe` (the realtime engine); type-graphql still
    // insists on a pub/sub, so give it one that fails loudly if anything ever used it.
    pubSub: {
      publish() {
        throw new Error('Publish through the PubSub of realtime/pubsub.ts, not type-graphql');
      },
      subscribe() {
        throw new Error('Subscribe through the realtime engine, not type-graphql topics');
      },
    },
  });
}

/** The SDL committed as schema.graphql. */
export async function printSdl(): Promise<string> {
  return printSchema(await createSchema()) + '\n';
}
