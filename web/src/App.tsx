import { ApolloProvider, useMutation, useQuery } from '@apollo/client/react';
import { useCallback, useEffect, useState } from 'react';
import { ConversationView } from './components/ConversationView';
import { ModView } from './components/ModView';
import { RoomScreen, RoomsBrowser } from './components/Rooms';
import { Sidebar } from './components/Sidebar';
import { StrangerScreen } from './components/Stranger';
import { Avatar } from './components/Avatar';
import { DeleteMyDataDocument, MeDocument, ResetIdentityDocument, type UserPartsFragment } from './gql/graphql';
import { createApi, type Api } from './lib/apollo';
import { useConnectionState, useSolving } from './lib/connection';
import { useHashView, type View } from './lib/hooks';
import { ProfanityMaskContext, useProfanityMask, useProfanityMaskState } from './lib/profanity';

/**
 * One Api (Apollo Client + WebSocket) per identity: a new identity gets a fresh cache and a
 * fresh socket, so nothing of the previous user (messages, subscriptions) carries over.
 */
export function App() {
  const [view] = useHashView();
  // The moderator view is a page of its own (no chat identity needed beyond the session).
  if (view.kind === 'mod') return <ModView />;
  return <ChatApp />;
}

function ChatApp() {
  const mask = useProfanityMaskState();
  const [api, setApi] = useState<Api>(createApi);
  const startOver = useCallback(() => {
    setApi((old) => {
      old.dispose();
      return createApi();
    });
  }, []);
  return (
    <ProfanityMaskContext.Provider value={mask}>
      <ApolloProvider client={api.client}>
        <Chat key={api.id} api={api} onIdentityReset={startOver} />
      </ApolloProvider>
    </ProfanityMaskContext.Provider>
  );
}

function Chat({ api, onIdentityReset }: { api: Api; onIdentityReset: () => void }) {
  // `me` goes first and alone: it creates the identity and its cookie, which every later
  // request and the WebSocket then carry (parallel first requests would be separate users).
  const { data, error, refetch } = useQuery(MeDocument, { notifyOnNetworkStatusChange: true });
  const solving = useSolving(api.connection);
  if (error) {
    return (
      <p className="splash">
        Cannot reach the server ({error.message}).{' '}
        <button type="button" onClick={() => void refetch()}>
          Try again
        </button>
      </p>
    );
  }
  if (!data) {
    return (
      <p className="splash" data-testid="splash">
        {solving ? 'Proving you are not a bot (a few seconds of work for your browser)…' : 'Connecting…'}
      </p>
    );
  }
  return <ChatScreen api={api} me={data.me} onIdentityReset={onIdentityReset} />;
}

function ChatScreen({ api, me, onIdentityReset }: { api: Api; me: UserPartsFragment; onIdentityReset: () => void }) {
  const [view, navigate] = useHashView();
  const connection = useConnectionState(api.connection);
  const [resetIdentity, { loading: resetting }] = useMutation(ResetIdentityDocument);
  const mask = useProfanityMask();
  // Narrow screens: the sidebar is a drawer over the conversation.
  const [drawer, setDrawer] = useState(false);
  const go = useCallback(
    (next: View) => {
      setDrawer(false);
      navigate(next);
    },
    [navigate],
  );
  useEffect(() => {
    if (!drawer) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setDrawer(false);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [drawer]);

  const [deleteMyData, { loading: forgetting }] = useMutation(DeleteMyDataDocument);
  const forgetMe = async () => {
    const ok = window.confirm(
      'Forget me: delete every message you sent (they become "message deleted"), your reactions and ' +
        'conversations, and this identity, for good?',
    );
    if (!ok) return;
    await deleteMyData();
    navigate({ kind: 'lobby' });
    onIdentityReset();
  };

  const newIdentity = async () => {
    await resetIdentity();
    navigate({ kind: 'lobby' });
    onIdentityReset();
  };

  return (
    <div className={`app ${drawer ? 'drawer-open' : ''}`}>
      <header className="topbar">
        <button
          type="button"
          className="menu"
          aria-label="Conversations"
          aria-controls="sidebar"
          aria-expanded={drawer}
          data-testid="menu"
          onClick={() => setDrawer((d) => !d)}
        >
          ☰
        </button>
        <span className="brand">Anonymo</span>
        <span className={`status status-${connection}`} data-testid="connection" data-state={connection}>
          {connection === 'connected' ? 'live' : connection === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
        <span className="identity">
          <Avatar user={me} size={32} />
          <span className="identity-name">
            <span className="you-are">You are </span>
            <strong data-testid="me-name">{me.username}</strong>
          </span>
          <label className="mask-toggle" title="Hide swear words in messages (only on this device)">
            <input
              type="checkbox"
              checked={mask.on}
              onChange={(e) => mask.setOn(e.target.checked)}
              data-testid="profanity-mask"
              aria-label="Mask swearing"
            />{' '}
            <span className="mask-text">Mask swearing</span>
          </label>
          <button
            type="button"
            onClick={newIdentity}
            disabled={resetting}
            data-testid="new-identity"
            title="Forget this identity and start over"
          >
            New identity
          </button>
          <button
            type="button"
            onClick={forgetMe}
            disabled={forgetting}
            data-testid="forget-me"
            title="Erase everything you sent and this identity"
          >
            Forget me
          </button>
        </span>
      </header>
      <Sidebar api={api} me={me} view={view} onNavigate={go} open={drawer} />
      {drawer && <div className="scrim" onClick={() => setDrawer(false)} aria-hidden="true" />}
      <MainView api={api} me={me} view={view} navigate={go} />
    </div>
  );
}

function MainView({
  api,
  me,
  view,
  navigate,
}: {
  api: Api;
  me: UserPartsFragment;
  view: View;
  navigate: (v: View) => void;
}) {
  switch (view.kind) {
    case 'room':
      return (
        <RoomScreen
          key={view.slug}
          me={me}
          slug={view.slug}
          connection={api.connection}
          onLeft={() => navigate({ kind: 'lobby' })}
        />
      );
    case 'rooms':
      return <RoomsBrowser onOpen={(slug) => navigate({ kind: 'room', slug })} />;
    case 'stranger':
      return <StrangerScreen me={me} connection={api.connection} />;
    default: {
      const peerId = view.kind === 'dm' ? view.peerId : null;
      return <ConversationView key={peerId ?? 'lobby'} me={me} peerId={peerId} connection={api.connection} />;
    }
  }
}
