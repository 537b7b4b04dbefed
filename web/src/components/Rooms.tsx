import { CombinedGraphQLErrors } from '@apollo/client';
import { useMutation, useQuery } from '@apollo/client/react';
import { useState, type FormEvent } from 'react';
import {
  CreateRoomDocument,
  JoinRoomDocument,
  LeaveRoomDocument,
  MyRoomsDocument,
  PublicRoomsDocument,
  RoomBySlugDocument,
  type RoomPartsFragment,
  type UserPartsFragment,
} from '../gql/graphql';
import type { ConnectionStatus } from '../lib/connection';
import { ConversationView } from './ConversationView';

const errorText = (err: unknown) =>
  CombinedGraphQLErrors.is(err) ? (err.errors[0]?.message ?? 'Refused') : 'The server cannot be reached';

/** The link that opens (and joins) a room: for a private room it is the invite. */
export const inviteLink = (slug: string) => `${location.origin}${location.pathname}#/r/${slug}`;

/** One room: its messages; join, invite link, leave. */
export function RoomScreen({
  me,
  slug,
  connection,
  onLeft,
}: {
  me: UserPartsFragment;
  slug: string;
  connection: ConnectionStatus;
  onLeft: () => void;
}) {
  // Counts and membership change elsewhere: show the cached room at once, then the current one.
  const { data, loading, refetch } = useQuery(RoomBySlugDocument, {
    variables: { slug },
    fetchPolicy: 'cache-and-network',
  });
  const [join, joining] = useMutation(JoinRoomDocument, { refetchQueries: [MyRoomsDocument] });
  const [leave] = useMutation(LeaveRoomDocument, { refetchQueries: [MyRoomsDocument] });
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const room = data?.room;
  if (loading && !data) return <main className="conversation splash">Loading the room…</main>;
  if (!room) {
    return (
      <main className="conversation splash" data-testid="room-missing">
        There is no room at this link.
      </main>
    );
  }

  const doJoin = async () => {
    setError(null);
    try {
      await join({ variables: { slug } });
      await refetch();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(inviteLink(room.slug));
      setCopied(true);
    } catch {
      // No clipboard (permissions, insecure origin): the link is selectable in the field.
      setCopied(false);
    }
  };

  const header = (
    <header className="room-header">
      <h1 className="conversation-title" data-testid="room-title">
        <span className="lobby-icon">{room.public ? '#' : '🔒'}</span>
        <span className="room-title-text">{room.title}</span>
        <span className="presence" data-testid="room-counts">
          {room.memberCount} members · {room.online} online
        </span>
      </h1>
      <div className="room-actions">
        <input
          readOnly
          value={inviteLink(room.slug)}
          aria-label="Invite link"
          data-testid="invite-link"
          onFocus={(e) => e.target.select()}
        />
        <button type="button" onClick={() => void copy()} data-testid="copy-invite">
          {copied ? 'Copied' : 'Copy link'}
        </button>
        {room.joined && (
          <button
            type="button"
            data-testid="leave-room"
            onClick={() =>
              void leave({
                variables: { room: room.id },
                update: (cache) =>
                  cache.modify({
                    id: cache.identify(room),
                    fields: { joined: () => false, memberCount: (n: number) => n - 1 },
                  }),
              }).then(onLeft, (err) => setError(errorText(err)))
            }
          >
            Leave
          </button>
        )}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </header>
  );

  // A private room's messages are for members only; a public one can be read before joining.
  if (!room.joined && !room.public) {
    return (
      <main className="conversation" data-testid="conversation-view" data-peer={`room:${room.id}`}>
        {header}
        <div className="join-box">
          <p>You were invited to “{room.title}”.</p>
          <button type="button" onClick={() => void doJoin()} disabled={joining.loading} data-testid="join-room">
            Join room
          </button>
        </div>
      </main>
    );
  }
  return (
    <ConversationView
      key={`${room.id}:${room.joined}`}
      me={me}
      peerId={null}
      roomId={room.id}
      connection={connection}
      header={header}
      closed={
        room.joined ? undefined : (
          <div className="join-box">
            <button type="button" onClick={() => void doJoin()} disabled={joining.loading} data-testid="join-room">
              Join to write here
            </button>
          </div>
        )
      }
    />
  );
}

/** Public rooms, most active first, and a form to create one. */
export function RoomsBrowser({ onOpen }: { onOpen: (slug: string) => void }) {
  const { data, fetchMore } = useQuery(PublicRoomsDocument, { variables: { first: 20 } });
  const [create, creating] = useMutation(CreateRoomDocument, { refetchQueries: [MyRoomsDocument] });
  const [title, setTitle] = useState('');
  const [isPublic, setPublic] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const { data: made } = await create({ variables: { input: { title: title.trim(), public: isPublic } } });
      if (made) onOpen(made.createRoom.slug);
    } catch (err) {
      setError(errorText(err));
    }
  };
  const rooms = data?.rooms.edges.map((e) => e.node) ?? [];
  return (
    <main className="conversation browse" data-testid="rooms-browser">
      <h1 className="conversation-title">Rooms</h1>
      <div className="browse-body">
        <form className="create-room" onSubmit={(e) => void submit(e)}>
          <h2>Create a room</h2>
          <input
            value={title}
            maxLength={80}
            placeholder="Title"
            aria-label="Room title"
            data-testid="room-title-input"
            onChange={(e) => setTitle(e.target.value)}
          />
          <label>
            <input
              type="checkbox"
              checked={!isPublic}
              data-testid="room-private"
              onChange={(e) => setPublic(!e.target.checked)}
            />{' '}
            Private (only people with the link)
          </label>
          <button type="submit" disabled={!title.trim() || creating.loading} data-testid="create-room">
            Create
          </button>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
        </form>
        <h2>Public rooms</h2>
        {rooms.length === 0 && <p className="hint">No public rooms yet.</p>}
        <ul className="room-list">
          {rooms.map((r) => (
            <RoomEntry key={r.id} room={r} onOpen={onOpen} />
          ))}
        </ul>
        {data?.rooms.pageInfo.hasNextPage && (
          <button
            type="button"
            className="older"
            onClick={() =>
              void fetchMore({
                variables: { after: data.rooms.pageInfo.endCursor },
                updateQuery: (prev, { fetchMoreResult }) => ({
                  ...fetchMoreResult,
                  rooms: { ...fetchMoreResult.rooms, edges: [...prev.rooms.edges, ...fetchMoreResult.rooms.edges] },
                }),
              })
            }
          >
            More rooms
          </button>
        )}
      </div>
    </main>
  );
}

export function RoomEntry({
  room,
  active = false,
  onOpen,
}: {
  room: RoomPartsFragment;
  active?: boolean;
  onOpen: (slug: string) => void;
}) {
  return (
    <li>
      <button
        type="button"
        className={`entry ${active ? 'active' : ''}`}
        onClick={() => onOpen(room.slug)}
        data-testid="room-entry"
        data-slug={room.slug}
      >
        <span className="lobby-icon">{room.public ? '#' : '🔒'}</span>
        <span className="entry-main">
          <span className="entry-title">{room.title}</span>
          <span className="entry-sub">
            {room.memberCount} members · {room.online} online
          </span>
        </span>
      </button>
    </li>
  );
}
