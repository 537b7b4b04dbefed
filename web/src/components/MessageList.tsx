import { useLayoutEffect, useRef } from 'react';
import type { MessagesQuery, UserPartsFragment } from '../gql/graphql';
import { fullTime, shortTime } from '../lib/format';
import { Avatar } from './Avatar';
import type { Pending } from './Composer';

type Edge = MessagesQuery['messages']['edges'][number];

/** How close to the top (px) scrolling loads the previous page. */
const LOAD_OLDER_AT = 80;

interface Props {
  me: UserPartsFragment;
  peerId: string | null;
  edges: Edge[];
  pending: Pending[];
  loading: boolean;
  hasOlder: boolean;
  loadingOlder: boolean;
  onLoadOlder: () => void;
}

export function MessageList({ me, peerId, edges, pending, loading, hasOlder, loadingOlder, onLoadOlder }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  const first = useRef<string | undefined>(undefined);
  const heightBeforePrepend = useRef<number | null>(null);

  const onScroll = () => {
    const el = box.current!;
    stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    if (el.scrollTop < LOAD_OLDER_AT && hasOlder && !loadingOlder) {
      heightBeforePrepend.current = el.scrollHeight;
      onLoadOlder();
    }
  };

  // Older messages are inserted above: keep what the reader looks at in place. New ones
  // below: follow them if the reader was at the bottom.
  const firstId = edges[0]?.node.id;
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (first.current !== undefined && firstId !== first.current && heightBeforePrepend.current !== null) {
      el.scrollTop += el.scrollHeight - heightBeforePrepend.current;
      heightBeforePrepend.current = null;
    } else if (stickToBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
    first.current = firstId;
  }, [edges, pending, firstId]);

  // In a direct conversation, "Seen" goes under my newest message the other user has read.
  const mine = edges.filter((e) => e.node.sender.id === me.id);
  const lastSeen = peerId ? mine.findLast((e) => e.node.readAt)?.node.id : undefined;
  const lastMine = mine.at(-1)?.node.id;

  return (
    <div className="messages" ref={box} onScroll={onScroll} data-testid="messages">
      {hasOlder ? (
        <button type="button" className="older" onClick={onLoadOlder} disabled={loadingOlder} data-testid="load-older">
          {loadingOlder ? 'Loading…' : 'Older messages'}
        </button>
      ) : (
        !loading && (
          <p className="start">
            {edges.length ? 'The beginning of this conversation.' : 'No messages yet. Say hello!'}
          </p>
        )
      )}
      {loading && <p className="start">Loading…</p>}
      {edges.map(({ node }) => {
        const isMine = node.sender.id === me.id;
        return (
          <article
            key={node.id}
            className={`message ${isMine ? 'mine' : ''}`}
            data-testid="message"
            data-id={node.id}
            data-mine={isMine}
          >
            <Avatar user={node.sender} size={32} />
            <div className="bubble">
              <header>
                <span className="author">{isMine ? 'You' : node.sender.username}</span>
                <time dateTime={node.createdAt} title={fullTime(node.createdAt)}>
                  {shortTime(node.createdAt)}
                </time>
              </header>
              <p className="text" data-testid="message-text">
                {node.text}
              </p>
              {peerId && node.id === lastSeen && (
                <footer className="receipt" data-testid="seen" title={node.readAt ? fullTime(node.readAt) : undefined}>
                  Seen {node.readAt && shortTime(node.readAt)}
                </footer>
              )}
              {peerId && node.id === lastMine && node.id !== lastSeen && (
                <footer className="receipt" data-testid="sent">
                  Sent
                </footer>
              )}
            </div>
          </article>
        );
      })}
      {pending.map((p) => (
        <article key={p.clientId} className="message mine pending" data-testid="pending">
          <Avatar user={me} size={32} />
          <div className="bubble">
            <header>
              <span className="author">You</span>
              <span>sending…</span>
            </header>
            <p className="text">{p.text}</p>
          </div>
        </article>
      ))}
    </div>
  );
}
