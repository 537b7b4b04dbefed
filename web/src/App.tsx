import { ApolloProvider, useMutation, useQuery } from '@apollo/client/react';
import { useCallback, useState } from 'react';
import { ConversationView } from './components/ConversationView';
import { Sidebar } from './components/Sidebar';
import { Avatar } from './components/Avatar';
import { DeleteMyDataDocument, MeDocument, ResetIdentityDocument, type UserPartsFragment } from './gql/graphql';
import { createApi, type Api } from './lib/apollo';
import { useConnectionState } from './lib/connection';
import { useHashPeer } from './lib/hooks';

/**
 * One Api (Apollo Client + WebSocket) per identity: a new identity gets a fresh cache and a
 * fresh socket, so nothing of the previous user (messages, subscriptions) carries over.
 */
export function App() {
  const [api, setApi] = useState<Api>(createApi);
  const startOver = useCallback(() => {
    setApi((old) => {
      old.dispose();
      return createApi();
    });
  }, []);
  return (
    <ApolloProvider client={api.client}>
      <Chat key={api.id} api={api} onIdentityReset={startOver} />
    </ApolloProvider>
  );
}

function Chat({ api, onIdentityReset }: { api: Api; onIdentityReset: () => void }) {
  // `me` goes first and alone: it creates the identity and its cookie, which every later
  // request and the WebSocket then carry (parallel first requests would be separate users).
  const { data, error, refetch } = useQuery(MeDocument, { notifyOnNetworkStatusChange: true });
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
  if (!data) return <p className="splash">Connecting…</p>;
  return <ChatScreen api={api} me={data.me} onIdentityReset={onIdentityReset} />;
}

function ChatScreen({ api, me, onIdentityReset }: { api: Api; me: UserPartsFragment; onIdentityReset: () => void }) {
  const [peerId, openConversation] = useHashPeer();
  const connection = useConnectionState(api.connection);
  const [resetIdentity, { loading: resetting }] = useMutation(ResetIdentityDocument);

  const [deleteMyData, { loading: forgetting }] = useMutation(DeleteMyDataDocument);
  const forgetMe = async () => {
    const ok = window.confirm(
      'Forget me: delete every message you sent (they become "message deleted"), your reactions and ' +
        'conversations, and this identity, for good?',
    );
    if (!ok) return;
    await deleteMyData();
    openConversation(null);
    onIdentityReset();
  };

  const newIdentity = async () => {
    await resetIdentity();
    openConversation(null);
    onIdentityReset();
  };

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">Anonymo</span>
        <span className={`status status-${connection}`} data-testid="connection" data-state={connection}>
          {connection === 'connected' ? 'live' : connection === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
        <span className="identity">
          <Avatar user={me} size={32} />
          <span>
            You are <strong data-testid="me-name">{me.username}</strong>
          </span>
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
      <Sidebar api={api} me={me} peerId={peerId} onOpen={openConversation} />
      <ConversationView key={peerId ?? 'lobby'} me={me} peerId={peerId} connection={api.connection} />
    </div>
  );
}
