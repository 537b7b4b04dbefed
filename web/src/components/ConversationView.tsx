import { useApolloClient, useFragment, useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { useEffect, useRef, useState } from 'react';
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
  /** The other user of a direct conversation; null: the lobby. */
  peerId: string | null;
  connection: ConnectionStatus;
}

/** One conversation: its history, live messages, typing, read status and the composer. */
export function ConversationView({ me, peerId, connection }: Props) {
  const client = useApolloClient();
  const withId = peerId ?? undefined;
  const variables = { with: withId, last: PAGE };
  const history = useQuery(MessagesDocument, { variables });
  const edges = history.data?.messages.edges ?? [];
  const pageInfo = history.data?.messages.pageInfo;
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [pending, setPending] = useState<Pending[]>([]);

  // Live messages start right after the newest one in history (fixed once it has loaded):
  // the server replays anything sent in between, and the link keeps `after` current so a
  // reconnect resumes from the newest message received.
  const [start, setStart] = useState<{ after?: string } | null>(null);
  useEffect(() => {
    if (history.data && !start) setStart({ after: history.data.messages.edges.at(-1)?.node.id });
  }, [history.data, start]);

  const append = (edge: Edge) =>
    client.cache.updateQuery({ query: MessagesDocument, variables }, (prev) => {
      if (!prev || prev.messages.edges.some((e) => e.node.id === edge.node.id)) return prev;
      return {
        ...prev,
        messages: { ...prev.messages, edges: [...prev.messages.edges, edge], pageInfo: { ...prev.messages.pageInfo, endCursor: edge.cursor } },
      };
    });

  const prepend = (page: MessagesQuery['messages']) =>
    client.cache.updateQuery({ query: MessagesDocument, variables }, (prev) => {
      if (!prev) return prev;
      const have = new Set(prev.messages.edges.map((e) => e.node.id));
      const older = page.edges.filter((e) => !have.has(e.node.id));
      if (older.length === 0) return prev;
      const pageInfo = { ...prev.messages.pageInfo, hasPreviousPage: page.pageInfo.hasPreviousPage, startCursor: page.pageInfo.startCursor };
      return { ...prev, messages: { ...prev.messages, edges: [...older, ...prev.messages.edges], pageInfo } };
    });

  // An empty history gives no id to start after, so the subscription starts "from now"
  // and the first message known from elsewhere anchors it: a live one (then whatever was
  // sent before it is fetched), or one this user just sent (then the subscription restarts
  // after it, and what came before it is fetched). Either way nothing sent in between is lost.
  const anchored = useRef(false);
  const anchor = (message: Edge['node'], restart: boolean) => {
    if (!start || start.after || anchored.current) return;
    anchored.current = true;
    append({ __typename: 'MessageEdge', cursor: message.cursor, node: message });
    if (restart) setStart({ after: message.id });
    // Not fetchMore: while it runs, the query ignores other cache writes (live messages), and
    // an empty page would leave it showing the list from before them.
    void client
      .query({ query: MessagesDocument, variables: { with: withId, last: PAGE, before: message.cursor }, fetchPolicy: 'no-cache' })
      .then(({ data }) => data && prepend(data.messages));
  };

  useSubscription(MessageAddedDocument, {
    skip: !start,
    variables: { with: withId, after: start?.after },
    onData: ({ data }) => {
      const message = data.data?.messageAdded;
      if (!message) return;
      anchor(message, false);
      append({ __typename: 'MessageEdge', cursor: message.cursor, node: message });
    },
  });

  const [typists, setTypists] = useState<ReadonlyMap<string, string>>(new Map());
  useSubscription(TypingDocument, {
    variables: { with: withId },
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
    <main className="conversation" data-testid="conversation-view" data-peer={peerId ?? 'lobby'}>
      <ConversationHeader peerId={peerId} />
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
      <Composer
        peerId={peerId}
        onPending={(p) => setPending((prev) => [...prev, p])}
        onSent={(message) => anchor(message, true)}
        onSettled={(clientId) => setPending((prev) => prev.filter((p) => p.clientId !== clientId))}
      />
    </main>
  );
}

function ConversationHeader({ peerId }: { peerId: string | null }) {
  const peer = useFragment({ fragment: UserPartsFragmentDoc, fragmentName: 'UserParts', from: peerId ? { __typename: 'User', id: peerId } : null });
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
