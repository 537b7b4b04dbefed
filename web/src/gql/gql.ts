/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment UserParts on User {\n  id\n  username\n  avatarUrl\n  online\n  lastSeenAt\n}\n\nfragment MessageParts on Message {\n  id\n  text\n  createdAt\n  readAt\n  clientId\n  cursor\n  sender {\n    ...UserParts\n  }\n  recipient {\n    id\n  }\n}\n\nquery Me {\n  me {\n    ...UserParts\n  }\n}\n\nquery Messages($with: ID, $last: Int, $before: String) {\n  messages(with: $with, last: $last, before: $before) {\n    edges {\n      cursor\n      node {\n        ...MessageParts\n      }\n    }\n    pageInfo {\n      hasPreviousPage\n      hasNextPage\n      startCursor\n      endCursor\n    }\n  }\n}\n\nquery OnlineUsers {\n  onlineUsers {\n    ...UserParts\n  }\n}\n\nquery Conversations {\n  conversations {\n    unreadCount\n    with {\n      ...UserParts\n    }\n    lastMessage {\n      id\n      text\n      createdAt\n      sender {\n        id\n      }\n    }\n  }\n}\n\nmutation SendMessage($input: SendMessageInput!) {\n  sendMessage(input: $input) {\n    ...MessageParts\n  }\n}\n\nmutation SetTyping($with: ID, $typing: Boolean!) {\n  setTyping(with: $with, typing: $typing)\n}\n\nmutation MarkRead($with: ID!, $upTo: ID!) {\n  markRead(with: $with, upTo: $upTo)\n}\n\nmutation ResetIdentity {\n  resetIdentity {\n    ...UserParts\n  }\n}\n\nsubscription MessageAdded($with: ID, $after: String) {\n  messageAdded(with: $with, after: $after) {\n    ...MessageParts\n  }\n}\n\nsubscription Typing($with: ID) {\n  typing(with: $with) {\n    typing\n    user {\n      id\n      username\n    }\n  }\n}\n\nsubscription PresenceChanged {\n  presenceChanged {\n    online\n    user {\n      ...UserParts\n    }\n  }\n}\n\nsubscription MessagesRead($with: ID!) {\n  messagesRead(with: $with) {\n    count\n    readAt\n    reader {\n      id\n    }\n    upTo {\n      id\n    }\n  }\n}": typeof types.UserPartsFragmentDoc,
};
const documents: Documents = {
    "fragment UserParts on User {\n  id\n  username\n  avatarUrl\n  online\n  lastSeenAt\n}\n\nfragment MessageParts on Message {\n  id\n  text\n  createdAt\n  readAt\n  clientId\n  cursor\n  sender {\n    ...UserParts\n  }\n  recipient {\n    id\n  }\n}\n\nquery Me {\n  me {\n    ...UserParts\n  }\n}\n\nquery Messages($with: ID, $last: Int, $before: String) {\n  messages(with: $with, last: $last, before: $before) {\n    edges {\n      cursor\n      node {\n        ...MessageParts\n      }\n    }\n    pageInfo {\n      hasPreviousPage\n      hasNextPage\n      startCursor\n      endCursor\n    }\n  }\n}\n\nquery OnlineUsers {\n  onlineUsers {\n    ...UserParts\n  }\n}\n\nquery Conversations {\n  conversations {\n    unreadCount\n    with {\n      ...UserParts\n    }\n    lastMessage {\n      id\n      text\n      createdAt\n      sender {\n        id\n      }\n    }\n  }\n}\n\nmutation SendMessage($input: SendMessageInput!) {\n  sendMessage(input: $input) {\n    ...MessageParts\n  }\n}\n\nmutation SetTyping($with: ID, $typing: Boolean!) {\n  setTyping(with: $with, typing: $typing)\n}\n\nmutation MarkRead($with: ID!, $upTo: ID!) {\n  markRead(with: $with, upTo: $upTo)\n}\n\nmutation ResetIdentity {\n  resetIdentity {\n    ...UserParts\n  }\n}\n\nsubscription MessageAdded($with: ID, $after: String) {\n  messageAdded(with: $with, after: $after) {\n    ...MessageParts\n  }\n}\n\nsubscription Typing($with: ID) {\n  typing(with: $with) {\n    typing\n    user {\n      id\n      username\n    }\n  }\n}\n\nsubscription PresenceChanged {\n  presenceChanged {\n    online\n    user {\n      ...UserParts\n    }\n  }\n}\n\nsubscription MessagesRead($with: ID!) {\n  messagesRead(with: $with) {\n    count\n    readAt\n    reader {\n      id\n    }\n    upTo {\n      id\n    }\n  }\n}": types.UserPartsFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment UserParts on User {\n  id\n  username\n  avatarUrl\n  online\n  lastSeenAt\n}\n\nfragment MessageParts on Message {\n  id\n  text\n  createdAt\n  readAt\n  clientId\n  cursor\n  sender {\n    ...UserParts\n  }\n  recipient {\n    id\n  }\n}\n\nquery Me {\n  me {\n    ...UserParts\n  }\n}\n\nquery Messages($with: ID, $last: Int, $before: String) {\n  messages(with: $with, last: $last, before: $before) {\n    edges {\n      cursor\n      node {\n        ...MessageParts\n      }\n    }\n    pageInfo {\n      hasPreviousPage\n      hasNextPage\n      startCursor\n      endCursor\n    }\n  }\n}\n\nquery OnlineUsers {\n  onlineUsers {\n    ...UserParts\n  }\n}\n\nquery Conversations {\n  conversations {\n    unreadCount\n    with {\n      ...UserParts\n    }\n    lastMessage {\n      id\n      text\n      createdAt\n      sender {\n        id\n      }\n    }\n  }\n}\n\nmutation SendMessage($input: SendMessageInput!) {\n  sendMessage(input: $input) {\n    ...MessageParts\n  }\n}\n\nmutation SetTyping($with: ID, $typing: Boolean!) {\n  setTyping(with: $with, typing: $typing)\n}\n\nmutation MarkRead($with: ID!, $upTo: ID!) {\n  markRead(with: $with, upTo: $upTo)\n}\n\nmutation ResetIdentity {\n  resetIdentity {\n    ...UserParts\n  }\n}\n\nsubscription MessageAdded($with: ID, $after: String) {\n  messageAdded(with: $with, after: $after) {\n    ...MessageParts\n  }\n}\n\nsubscription Typing($with: ID) {\n  typing(with: $with) {\n    typing\n    user {\n      id\n      username\n    }\n  }\n}\n\nsubscription PresenceChanged {\n  presenceChanged {\n    online\n    user {\n      ...UserParts\n    }\n  }\n}\n\nsubscription MessagesRead($with: ID!) {\n  messagesRead(with: $with) {\n    count\n    readAt\n    reader {\n      id\n    }\n    upTo {\n      id\n    }\n  }\n}"): (typeof documents)["fragment UserParts on User {\n  id\n  username\n  avatarUrl\n  online\n  lastSeenAt\n}\n\nfragment MessageParts on Message {\n  id\n  text\n  createdAt\n  readAt\n  clientId\n  cursor\n  sender {\n    ...UserParts\n  }\n  recipient {\n    id\n  }\n}\n\nquery Me {\n  me {\n    ...UserParts\n  }\n}\n\nquery Messages($with: ID, $last: Int, $before: String) {\n  messages(with: $with, last: $last, before: $before) {\n    edges {\n      cursor\n      node {\n        ...MessageParts\n      }\n    }\n    pageInfo {\n      hasPreviousPage\n      hasNextPage\n      startCursor\n      endCursor\n    }\n  }\n}\n\nquery OnlineUsers {\n  onlineUsers {\n    ...UserParts\n  }\n}\n\nquery Conversations {\n  conversations {\n    unreadCount\n    with {\n      ...UserParts\n    }\n    lastMessage {\n      id\n      text\n      createdAt\n      sender {\n        id\n      }\n    }\n  }\n}\n\nmutation SendMessage($input: SendMessageInput!) {\n  sendMessage(input: $input) {\n    ...MessageParts\n  }\n}\n\nmutation SetTyping($with: ID, $typing: Boolean!) {\n  setTyping(with: $with, typing: $typing)\n}\n\nmutation MarkRead($with: ID!, $upTo: ID!) {\n  markRead(with: $with, upTo: $upTo)\n}\n\nmutation ResetIdentity {\n  resetIdentity {\n    ...UserParts\n  }\n}\n\nsubscription MessageAdded($with: ID, $after: String) {\n  messageAdded(with: $with, after: $after) {\n    ...MessageParts\n  }\n}\n\nsubscription Typing($with: ID) {\n  typing(with: $with) {\n    typing\n    user {\n      id\n      username\n    }\n  }\n}\n\nsubscription PresenceChanged {\n  presenceChanged {\n    online\n    user {\n      ...UserParts\n    }\n  }\n}\n\nsubscription MessagesRead($with: ID!) {\n  messagesRead(with: $with) {\n    count\n    readAt\n    reader {\n      id\n    }\n    upTo {\n      id\n    }\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;