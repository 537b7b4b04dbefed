import { useMutation } from '@apollo/client/react';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import {
  DeleteMessageDocument,
  EditMessageDocument,
  ReactDocument,
  ReportMessageDocument,
  type MessagesQuery,
  type ReportReason,
  type UserPartsFragment,
} from '../gql/graphql';
import { fullTime, shortTime } from '../lib/format';
import { useShowText } from '../lib/profanity';
import { Avatar } from './Avatar';
import type { Pending } from './Composer';

type Edge = MessagesQuery['messages']['edges'][number];
export type MessageNode = Edge['node'];

/** The reactions offered by the picker (any single emoji is accepted by the server). */
const PICKER = ['👍', '❤️', '😂', '🎉', '😮', '😢'];
/** The contract's fixed report reasons, as people read them. */
const REPORT_REASONS: Array<[ReportReason, string]> = [
  ['SPAM', 'Spam'],
  ['HARASSMENT', 'Harassment'],
  ['HATE', 'Hate'],
  ['SEXUAL', 'Sexual'],
  ['VIOLENCE', 'Violence'],
  ['OTHER', 'Other'],
];
/** EDIT_WINDOW_SECONDS's default: the edit button is offered while it lasts. */
const EDIT_WINDOW_MS = 900_000;

/** Re-renders every second while any message has an expiry, so expired ones disappear on time. */
function useNow(active: boolean): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

/** Scrolls to a message of the list and flashes it (a reply's quoted original). */
function scrollToMessage(id: string): void {
  const el = document.querySelector<HTMLElement>(`[data-testid="message"][data-id="${CSS.escape(id)}"]`);
  if (!el) return;
  el.scrollIntoView({ block: 'center', behavior: 'smooth' });
  el.classList.add('flash');
  setTimeout(() => el.classList.remove('flash'), 1500);
}

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
  onReply: (node: MessageNode) => void;
}

export function MessageList({
  me,
  peerId,
  edges: allEdges,
  pending,
  loading,
  hasOlder,
  loadingOlder,
  onLoadOlder,
  onReply,
}: Props) {
  const now = useNow(allEdges.some((e) => e.node.expiresAt));
  // Disappearing messages leave the screen when they expire (the server hides them too), and
  // messages hidden by reports leave everyone's but their sender's (messageUpdated says
  // `hidden: true`; `hidden: false` after a moderator clears the report brings them back).
  const edges = allEdges.filter(
    (e) => (!e.node.expiresAt || Date.parse(e.node.expiresAt) > now) && (!e.node.hidden || e.node.sender.id === me.id),
  );
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
      {edges.map(({ node }) => (
        <MessageItem
          key={node.id}
          node={node}
          me={me}
          peerId={peerId}
          seen={node.id === lastSeen}
          sent={node.id === lastMine && node.id !== lastSeen}
          now={now}
          onReply={onReply}
        />
      ))}
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

interface ItemProps {
  node: MessageNode;
  me: UserPartsFragment;
  peerId: string | null;
  seen: boolean;
  sent: boolean;
  now: number;
  onReply: (node: MessageNode) => void;
}

function MessageItem({ node, me, peerId, seen, sent, now, onReply }: ItemProps) {
  const isMine = node.sender.id === me.id;
  const show = useShowText();
  const [editing, setEditing] = useState<string | null>(null);
  const [picking, setPicking] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [edit] = useMutation(EditMessageDocument);
  const [remove] = useMutation(DeleteMessageDocument);
  const [react] = useMutation(ReactDocument);
  const [reportMessage] = useMutation(ReportMessageDocument);
  const [reporting, setReporting] = useState(false);
  const [reported, setReported] = useState(false);
  const deleted = Boolean(node.deletedAt);
  const canEdit = isMine && !deleted && now - Date.parse(node.createdAt) < EDIT_WINDOW_MS;
  const fail = (err: unknown) => setError(err instanceof Error ? err.message : 'Failed');

  const saveEdit = () => {
    const text = editing?.trim();
    if (!text) return;
    setEditing(null);
    edit({ variables: { id: node.id, text } }).catch(fail);
  };
  const toggle = (emoji: string, on: boolean) => {
    setPicking(false);
    react({ variables: { id: node.id, emoji, on } }).catch(fail);
  };
  const report = (reason: ReportReason) => {
    setReporting(false);
    reportMessage({ variables: { id: node.id, reason } })
      .then(() => setReported(true))
      .catch(fail);
  };
  const confirmDelete = () => {
    if (window.confirm('Delete this message for everyone?')) remove({ variables: { id: node.id } }).catch(fail);
  };

  return (
    <article
      className={`message ${isMine ? 'mine' : ''} ${deleted ? 'deleted' : ''}`}
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
          {node.editedAt && !deleted && (
            <span className="edited" data-testid="edited" title={fullTime(node.editedAt)}>
              edited
            </span>
          )}
          {node.hidden && !deleted && (
            <span
              className="edited"
              data-testid="hidden-note"
              title="Reported by several people: hidden from others until a moderator decides"
            >
              hidden from others
            </span>
          )}
          {node.expiresAt && !deleted && (
            <span className="expires" data-testid="expires" title={`Disappears ${fullTime(node.expiresAt)}`}>
              ⏱ {formatLeft(Date.parse(node.expiresAt) - now)}
            </span>
          )}
        </header>
        {node.replyTo && (
          <button
            type="button"
            className="quote"
            data-testid="reply-quote"
            onClick={() => scrollToMessage(node.replyTo!.id)}
          >
            <strong>{node.replyTo.sender.username}</strong>{' '}
            {node.replyTo.deletedAt ? <em>message deleted</em> : show(node.replyTo.text)}
          </button>
        )}
        {deleted ? (
          <p className="text tombstone" data-testid="message-deleted">
            message deleted
          </p>
        ) : editing !== null ? (
          <form
            className="edit"
            onSubmit={(e) => {
              e.preventDefault();
              saveEdit();
            }}
          >
            <input
              value={editing}
              maxLength={2000}
              aria-label="Edit message"
              data-testid="edit-input"
              autoFocus
              onChange={(e) => setEditing(e.target.value)}
              onKeyDown={(e) => e.key === 'Escape' && setEditing(null)}
            />
            <button type="submit" data-testid="edit-save">
              Save
            </button>
          </form>
        ) : (
          <p className="text" data-testid="message-text">
            {show(node.text)}
          </p>
        )}
        {!deleted && node.reactions.length > 0 && (
          <div className="reactions" data-testid="reactions">
            {node.reactions.map((r) => (
              <button
                type="button"
                key={r.emoji}
                className={`reaction ${r.mine ? 'mine' : ''}`}
                data-testid="reaction"
                data-emoji={r.emoji}
                data-mine={r.mine}
                onClick={() => toggle(r.emoji, !r.mine)}
              >
                {r.emoji} <span data-testid="reaction-count">{r.count}</span>
              </button>
            ))}
          </div>
        )}
        {!deleted && (
          <div className="actions">
            <button type="button" data-testid="react-open" onClick={() => setPicking((p) => !p)} title="React">
              ☺
            </button>
            <button type="button" data-testid="reply" onClick={() => onReply(node)}>
              Reply
            </button>
            {canEdit && (
              <button type="button" data-testid="edit" onClick={() => setEditing(node.text)}>
                Edit
              </button>
            )}
            {isMine && (
              <button type="button" data-testid="delete" onClick={confirmDelete}>
                Delete
              </button>
            )}
            {!isMine &&
              (reported ? (
                <span className="reported-note" data-testid="reported">
                  Reported
                </span>
              ) : (
                <button
                  type="button"
                  data-testid="report-open"
                  title="Report this message to the moderators"
                  onClick={() => setReporting((r) => !r)}
                >
                  Report
                </button>
              ))}
          </div>
        )}
        {reporting && (
          <div className="picker report-reasons" data-testid="report-menu">
            {REPORT_REASONS.map(([reason, label]) => (
              <button
                type="button"
                key={reason}
                data-testid="report-reason"
                data-reason={reason}
                onClick={() => report(reason)}
              >
                {label}
              </button>
            ))}
          </div>
        )}
        {picking && (
          <div className="picker" data-testid="picker">
            {PICKER.map((emoji) => (
              <button
                type="button"
                key={emoji}
                data-testid="pick"
                data-emoji={emoji}
                onClick={() => toggle(emoji, !node.reactions.some((r) => r.emoji === emoji && r.mine))}
              >
                {emoji}
              </button>
            ))}
          </div>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {peerId && seen && (
          <footer className="receipt" data-testid="seen" title={node.readAt ? fullTime(node.readAt) : undefined}>
            Seen {node.readAt && shortTime(node.readAt)}
          </footer>
        )}
        {peerId && sent && (
          <footer className="receipt" data-testid="sent">
            Sent
          </footer>
        )}
      </div>
    </article>
  );
}

function formatLeft(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86400) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
