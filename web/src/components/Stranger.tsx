import { CombinedGraphQLErrors } from '@apollo/client';
import { useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import {
  EndStrangerChatDocument,
  FindStrangerDocument,
  LeaveStrangerQueueDocument,
  StrangerChatDocument,
  StrangerEventsDocument,
  type UserPartsFragment,
} from '../gql/graphql';
import type { ConnectionStatus } from '../lib/connection';
import { Avatar } from './Avatar';
import { ConversationView } from './ConversationView';

type State =
  | { kind: 'idle' }
  | { kind: 'waiting' }
  | { kind: 'chatting'; stranger: UserPartsFragment; shared: string[] }
  | { kind: 'left'; stranger: UserPartsFragment };

/** Interests as typed: comma- or space-separated (the server checks and normalises them). */
const parseInterests = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** "Talk to a stranger": interests, waiting, the chat, Next, and a clear notice when they leave. */
export function StrangerScreen({ me, connection }: { me: UserPartsFragment; connection: ConnectionStatus }) {
  const [state, setState] = useState<State>({ kind: 'idle' });
  const [interests, setInterests] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [find] = useMutation(FindStrangerDocument);
  const [leaveQueue] = useMutation(LeaveStrangerQueueDocument);
  const [end] = useMutation(EndStrangerChatDocument);

  useSubscription(StrangerEventsDocument, {
    onData: ({ data }) => {
      const event = data.data?.strangerEvents;
      if (!event) return;
      if (event.kind === 'MATCHED') setState({ kind: 'chatting', stranger: event.with, shared: event.sharedInterests });
      else
        setState((s) =>
          s.kind === 'chatting' && s.stranger.id === event.with.id ? { kind: 'left', stranger: event.with } : s,
        );
    },
  });
  // While waiting, also ask now and then: a MATCHED that raced the subscription is not lost.
  const current = useQuery(StrangerChatDocument, {
    pollInterval: state.kind === 'waiting' ? 1500 : 0,
    fetchPolicy: 'network-only',
  });
  const acted = useRef(false);
  useEffect(() => {
    const chat = current.data?.strangerChat;
    // On arrival (a reload) the chat in progress comes back; later, only while waiting.
    if (chat && (state.kind === 'waiting' || (state.kind === 'idle' && !acted.current))) {
      setState({ kind: 'chatting', stranger: chat.with, shared: chat.sharedInterests });
    }
  }, [current.data, state.kind]);

  // Leaving this screen while waiting leaves the queue.
  const waiting = useRef(false);
  waiting.current = state.kind === 'waiting';
  useEffect(
    () => () => {
      if (waiting.current) void leaveQueue().catch(() => undefined);
    },
    [leaveQueue],
  );

  const start = async (e?: FormEvent) => {
    e?.preventDefault();
    setError(null);
    acted.current = true;
    try {
      setState({ kind: 'waiting' });
      await find({ variables: { interests: parseInterests(interests) } });
    } catch (err) {
      setState({ kind: 'idle' });
      setError(CombinedGraphQLErrors.is(err) ? (err.errors[0]?.message ?? 'Refused') : 'The server cannot be reached');
    }
  };
  const stop = async () => {
    acted.current = true;
    if (state.kind === 'waiting') await leaveQueue().catch(() => undefined);
    if (state.kind === 'chatting') await end({ variables: { with: state.stranger.id } }).catch(() => undefined);
    setState({ kind: 'idle' });
  };

  const controls = (
    <div className="stranger-controls">
      <button type="button" onClick={() => void start()} data-testid="stranger-next">
        {state.kind === 'idle' ? 'Start' : 'Next'}
      </button>
      {state.kind !== 'idle' && (
        <button type="button" onClick={() => void stop()} data-testid="stranger-stop">
          Stop
        </button>
      )}
    </div>
  );

  if (state.kind === 'chatting' || state.kind === 'left') {
    const header = (
      <header className="room-header">
        <h1 className="conversation-title" data-testid="stranger-title">
          <Avatar user={state.stranger} size={32} />
          <span className="room-title-text">{state.stranger.username}</span>
          {state.kind === 'chatting' && state.shared.length > 0 && (
            <span className="presence" data-testid="shared-interests">
              you both like {state.shared.join(', ')}
            </span>
          )}
        </h1>
        {controls}
      </header>
    );
    return (
      <ConversationView
        key={state.stranger.id}
        me={me}
        peerId={state.stranger.id}
        connection={connection}
        header={header}
        closed={
          state.kind === 'left' ? (
            <p className="notice" role="status" data-testid="stranger-left">
              {state.stranger.username} left the chat. Press Next to meet someone else.
            </p>
          ) : undefined
        }
      />
    );
  }

  return (
    <main className="conversation browse" data-testid="stranger-view" data-state={state.kind}>
      <h1 className="conversation-title">Talk to a stranger</h1>
      <form className="create-room" onSubmit={(e) => void start(e)}>
        <label htmlFor="interests">Interests (optional, up to 5)</label>
        <input
          id="interests"
          value={interests}
          placeholder="e.g. music, chess, sci-fi"
          data-testid="interests"
          onChange={(e) => setInterests(e.target.value)}
          disabled={state.kind === 'waiting'}
        />
        {state.kind === 'idle' ? (
          <button type="submit" data-testid="stranger-start">
            Find a stranger
          </button>
        ) : (
          <>
            <p className="notice" role="status" data-testid="stranger-waiting">
              Looking for someone{parseInterests(interests).length ? ' who shares an interest' : ''}…
            </p>
            <button type="button" onClick={() => void stop()} data-testid="stranger-stop">
              Cancel
            </button>
          </>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
