import { useApolloClient, useQuery, useSubscription } from '@apollo/client/react';
import { useEffect } from 'react';
import {
  ConversationUpdatedDocument,
  ConversationsDocument,
  MyRoomsDocument,
  OnlineUsersDocument,
  PresenceChangedDocument,
  type UserPartsFragment,
} from '../gql/graphql';
import type { Api } from '../lib/apollo';
import { shortTime } from '../lib/format';
import { useShowText } from '../lib/profanity';
import type { View } from '../lib/hooks';
import { Avatar } from './Avatar';
import { RoomEntry } from './Rooms';

interface Props {
  api: Api;
  me: UserPartsFragment;
  view: View;
  onNavigate: (view: View) => void;
  /** The drawer is open (narrow screens). */
  open: boolean;
}

export function Sidebar({ api, me, view, onNavigate, open }: Props) {
  const peerId = view.kind === 'dm' ? view.peerId : null;
  const show = useShowText();
  const onOpen = (id: string | null) => onNavigate(id ? { kind: 'dm', peerId: id } : { kind: 'lobby' });
  const myRooms = useQuery(MyRoomsDocument);
  const client = useApolloClient();
  const conversations = useQuery(ConversationsDocument);
  // The server pushes each conversation as it changes (new ones too): newest activity first.
  useSubscription(ConversationUpdatedDocument, {
    onData: ({ data }) => {
      const updated = data.data?.conversationUpdated;
      if (!updated) return;
      client.cache.updateQuery({ query: ConversationsDocument }, (prev) => {
        if (!prev) return prev;
        const rest = prev.conversations.filter((c) => c.with.id !== updated.with.id);
        const at = (c: typeof updated) => (c.lastMessage ? Date.parse(c.lastMessage.createdAt) : 0);
        return { ...prev, conversations: [updated, ...rest].sort((x, y) => at(y) - at(x)) };
      });
    },
  });
  const online = useQuery(OnlineUsersDocument);

  useSubscription(PresenceChangedDocument, {
    onData: ({ data }) => {
      const event = data.data?.presenceChanged;
      if (!event) return;
      client.cache.updateQuery({ query: OnlineUsersDocument }, (prev) => {
        if (!prev) return prev;
        const others = prev.onlineUsers.filter((u) => u.id !== event.user.id);
        const onlineUsers = event.online
          ? [...others, event.user].sort((a, b) => a.username.localeCompare(b.username))
          : others;
        return { ...prev, onlineUsers };
      });
    },
  });

  // Presence and conversation updates have no replay: after a drop, read them again.
  const { refetch: refetchOnline } = online;
  const { refetch: refetchConversations } = conversations;
  const { refetch: refetchRooms } = myRooms;
  useEffect(
    () =>
      api.connection.onReconnected(() => {
        void refetchOnline();
        void refetchConversations();
        void refetchRooms();
      }),
    [api, refetchOnline, refetchConversations, refetchRooms],
  );

  const list = conversations.data?.conversations ?? [];
  const others = (online.data?.onlineUsers ?? []).filter((u) => u.id !== me.id);

  return (
    <nav className={`sidebar ${open ? 'open' : ''}`} id="sidebar" aria-label="Conversations">
      <button
        type="button"
        className={`entry ${view.kind === 'lobby' ? 'active' : ''}`}
        onClick={() => onOpen(null)}
        data-testid="open-lobby"
      >
        <span className="lobby-icon">#</span>
        <span className="entry-main">
          <span className="entry-title">Lobby</span>
          <span className="entry-sub">Everyone, in public</span>
        </span>
      </button>

      <button
        type="button"
        className={`entry ${view.kind === 'stranger' ? 'active' : ''}`}
        onClick={() => onNavigate({ kind: 'stranger' })}
        data-testid="open-stranger"
      >
        <span className="lobby-icon">?</span>
        <span className="entry-main">
          <span className="entry-title">Talk to a stranger</span>
          <span className="entry-sub">Meet someone at random</span>
        </span>
      </button>

      <h2>Rooms</h2>
      <ul data-testid="my-rooms">
        {(myRooms.data?.myRooms ?? []).map((r) => (
          <RoomEntry
            key={r.id}
            room={r}
            active={view.kind === 'room' && view.slug === r.slug}
            onOpen={(slug) => onNavigate({ kind: 'room', slug })}
          />
        ))}
      </ul>
      <button
        type="button"
        className={`entry ${view.kind === 'rooms' ? 'active' : ''}`}
        onClick={() => onNavigate({ kind: 'rooms' })}
        data-testid="open-rooms"
      >
        <span className="entry-main">
          <span className="entry-title">Browse or create rooms…</span>
        </span>
      </button>

      <h2>Direct messages</h2>
      {list.length === 0 && <p className="hint">Pick someone online to start one.</p>}
      <ul data-testid="conversations">
        {list.map((c) => (
          <li key={c.with.id}>
            <button
              type="button"
              className={`entry ${peerId === c.with.id ? 'active' : ''}`}
              onClick={() => onOpen(c.with.id)}
              data-testid="conversation"
              data-user-id={c.with.id}
            >
              <Avatar user={c.with} />
              <span className="entry-main">
                <span className="entry-title">
                  {c.with.username}
                  {c.with.online && <span className="dot" title="online" />}
                </span>
                {c.lastMessage && (
                  <span className="entry-sub">
                    {c.lastMessage.sender.id === me.id ? 'You: ' : ''}
                    {show(c.lastMessage.text)}
                  </span>
                )}
              </span>
              <span className="entry-side">
                {c.lastMessage && <time dateTime={c.lastMessage.createdAt}>{shortTime(c.lastMessage.createdAt)}</time>}
                {c.unreadCount > 0 && (
                  <span className="badge" data-testid="unread" aria-label={`${c.unreadCount} unread`}>
                    {c.unreadCount}
                  </span>
                )}
              </span>
            </button>
          </li>
        ))}
      </ul>

      {/* The viewer is online by definition; the list may predate this tab's own socket. */}
      <h2>Online now ({others.length + 1})</h2>
      <ul data-testid="online-users">
        <li>
          <span className="entry self" data-testid="online-me" data-user-id={me.id}>
            <Avatar user={me} />
            <span className="entry-title">{me.username} (you)</span>
          </span>
        </li>
        {others.map((u) => (
          <li key={u.id}>
            <button
              type="button"
              className={`entry ${peerId === u.id ? 'active' : ''}`}
              onClick={() => onOpen(u.id)}
              data-testid="online-user"
              data-user-id={u.id}
              title={`Message ${u.username}`}
            >
              <Avatar user={u} />
              <span className="entry-title">{u.username}</span>
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
