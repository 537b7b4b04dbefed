import { useApolloClient, useFragment, useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import {
  ConversationsDocument,
  MarkReadDocument,
  MessageAddedDocument,
  MessagesDocument,
  MessagesReadDocument,
  TypingDocument,
  UserPartsFragmentDoc,
  type MessagesQuery,
  type UserPartsFragment,
} from '../gql/graphql';
import type { ConnectionStatus } from '../lib/connection';
import { useDocumentVisible } from '../lib/hooks';
import { Avatar } from './Avatar';
import { Composer, type Pending } from './Composer';
import { MessageList } from './MessageList';

/** Messages per page of history. */
const PAGE = 30;

type Edge = MessagesQuery['messages']['edges'][number];

interface Props {
  me: UserPartsFragment;
  /** The other user of a direct conversation; null: the lobby (or a room). */
  peerId: string | null;
  /** A room's id: its conversation. */
  roomId?: string | null;
  connection: ConnectionStatus;
  /** Replaces the default title bar (rooms, strangers). */
  header?: ReactNode;
  /** Shown instead of the composer when the viewer cannot write here (and why). */
  closed?: ReactNode;
}

/** One conversation: its history, live messages, typing, read status and the composer. */
/** The cursor before a conversation's first message (sequence number 0). */
const BEGINNING = 'bTA';

export function ConversationView({ me, peerId, roomId, connection, header, closed }: Props) {
  const client = useApolloClient();
  const withId = peerId ?? undefined;
  const room = roomId ?? undefined;
  const variables = { with: withId, room, last: PAGE };
  const history = useQuery(MessagesDocument, { variables });
  const edges = history.data?.messages.edges ?? [];
  const pageInfo = history.data?.messages.pageInfo;
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [pending, setPending] = useState<Pending[]>([]);

  // Live messages start right after the newest one in history (fixed once it has loaded):
  // the server replays anything sent in between, and the link keeps `after` current so a
  // reconnect resumes from the newest message received. An empty conversation starts after
  // its beginning, so even a message sent while the subscription was starting is replayed.
  const [start, setStart] = useState<{ after: string } | null>(null);
  useEffect(() => {
    if (history.data && !start) setStart({ after: history.data.messages.edges.at(-1)?.node.id ?? BEGINNING });
  }, [history.data, start]);

  const append = (edge: Edge) =>
    client.cache.updateQuery({ query: MessagesDocument, variables }, (prev) => {
      if (!prev || prev.messages.edges.some((e) => e.node.id === edge.node.id)) return prev;
      return {
        ...prev,
        messages: {
          ...prev.messages,
          edges: [...prev.messages.edges, edge],
          pageInfo: { ...prev.messages.pageInfo, endCursor: edge.cursor },
        },
      };
    });

  useSubscription(MessageAddedDocument, {
    skip: !start,
    variables: { with: withId, room, after: start?.after ?? BEGINNING },
    onData: ({ data }) => {
      const message = data.data?.messageAdded;
      if (!message) return;
      append({ __typename: 'MessageEdge', cursor: message.cursor, node: message });
    },
  });

  const [typists, setTypists] = useState<ReadonlyMap<string, string>>(new Map());
  useSubscription(TypingDocument, {
    variables: { with: withId, room },
    onData: ({ data }) => {
      const event = data.data?.typing;
      if (!event) return;
      setTypists((prev) => {
        const next = new Map(prev);
        if (event.typing) next.set(event.user.id, event.user.username);
        else next.delete(event.user.id);
        return next;
      });
    },
  });

  // Typing has no replay: a "stopped" sent while the socket was down would never come.
  useEffect(() => connection.onReconnected(() => setTypists(new Map())), [connection]);

  // Read receipts: the other user read my messages up to `upTo`.
  useSubscription(MessagesReadDocument, {
    skip: !peerId,
    variables: { with: peerId ?? '' },
    onData: ({ data }) => {
      const receipt = data.data?.messagesRead;
      if (!receipt) return;
      if (receipt.reader.id !== peerId) {
        // I read them in another tab: the unread counts changed.
        void client.refetchQueries({ include: [ConversationsDocument] });
        return;
      }
      const cached = client.cache.readQuery({ query: MessagesDocument, variables });
      const list = cached?.messages.edges ?? [];
      const upTo = list.findIndex((e) => e.node.id === receipt.upTo.id);
      for (const { node } of list.slice(0, upTo + 1)) {
        if (node.sender.id === me.id && !node.readAt) {
          client.cache.modify({ id: client.cache.identify(node), fields: { readAt: () => receipt.readAt } });
        }
      }
    },
  });

  // Mark the other user's messages read while this conversation is on screen.
  const visible = useDocumentVisible();
  const [markRead] = useMutation(MarkReadDocument, { refetchQueries: [ConversationsDocument] });
  const marked = useRef<string | undefined>(undefined);
  const newestFromPeer = peerId ? edges.findLast((e) => e.node.sender.id === peerId)?.node : undefined;
  useEffect(() => {
    if (!peerId || !visible || !newestFromPeer || newestFromPeer.readAt || marked.current === newestFromPeer.id) return;
    marked.current = newestFromPeer.id;
    markRead({ variables: { with: peerId, upTo: newestFromPeer.id } }).catch(() => {
      marked.current = undefined;
    });
  }, [peerId, visible, newestFromPeer, markRead]);

  const loadOlder = async () => {
    if (!pageInfo?.hasPreviousPage || loadingOlder) return;
    setLoadingOlder(true);
    try {
      await history.fetchMore({ variables: { before: pageInfo.startCursor } });
    } finally {
      setLoadingOlder(false);
    }
  };

  // Sent messages stay "sending…" until they arrive through the subscription.
  const arrived = new Set(edges.map((e) => e.node.clientId).filter(Boolean));
  const waiting = pending.filter((p) => !arrived.has(p.clientId));

  return (
    <main
      className="conversation"
      data-testid="conversation-view"
      data-peer={room ? `room:${room}` : (peerId ?? 'lobby')}
    >
      {header ?? <ConversationHeader peerId={peerId} />}
      {history.error && <p className="error">Could not load messages: {history.error.message}</p>}
      <MessageList
        me={me}
        peerId={peerId}
        edges={edges}
        pending={waiting}
        loading={history.loading && !history.data}
        hasOlder={pageInfo?.hasPreviousPage ?? false}
        loadingOlder={loadingOlder}
        onLoadOlder={loadOlder}
      />
      <TypingIndicator names={[...typists.values()]} />
      {closed ?? (
        <Composer
          peerId={peerId}
          roomId={room ?? null}
          onPending={(p) => setPending((prev) => [...prev, p])}
          onSent={(message) => append({ __typename: 'MessageEdge', cursor: message.cursor, node: message })}
          onSettled={(clientId) => setPending((prev) => prev.filter((p) => p.clientId !== clientId))}
        />
      )}
    </main>
  );
}

function ConversationHeader({ peerId }: { peerId: string | null }) {
  const peer = useFragment({
    fragment: UserPartsFragmentDoc,
    fragmentName: 'UserParts',
    from: peerId ? { __typename: 'User', id: peerId } : null,
  });
  if (!peerId) {
    return (
      <h1 className="conversation-title">
        <span className="lobby-icon">#</span> Lobby
      </h1>
    );
  }
  const user = peer.complete ? peer.data : undefined;
  return (
    <h1 className="conversation-title" data-testid="peer-name">
      {user && <Avatar user={user} size={32} />}
      {user?.username ?? 'Direct conversation'}
      {user && <span className={`presence ${user.online ? 'on' : ''}`}>{user.online ? 'online' : 'offline'}</span>}
    </h1>
  );
}

function TypingIndicator({ names }: { names: string[] }) {
  const text =
    names.length === 0
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length === 2
          ? `${names[0]} and ${names[1]} are typing…`
          : 'Several people are typing…';
  return (
    <div className="typing" data-testid="typing" aria-live="polite">
      {text}
    </div>
  );
}
