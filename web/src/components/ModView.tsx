import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { ApolloProvider, useMutation, useQuery } from '@apollo/client/react';
import { useMemo, useState, type FormEvent } from 'react';
import {
  BanUserDocument,
  ClearReportDocument,
  DeleteMessageDocument,
  IsModeratorDocument,
  ReportContextDocument,
  ReportsDocument,
  type ModMessageFragment,
  type ReportsQuery,
} from '../gql/graphql';
import { fullTime, shortTime } from '../lib/format';
import { powFetch } from '../lib/pow';

/** The token stays in this tab only (sessionStorage): closing the tab signs the moderator out. */
const TOKEN_KEY = 'anonymo.moderatorToken';

function readToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

function writeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage refused: the token lasts for this page.
  }
}

/** Queries and mutations over HTTP with `Authorization: Bearer <token>` (and the session cookie). */
function moderatorClient(token: string): ApolloClient {
  return new ApolloClient({
    link: new HttpLink({
      uri: '/graphql',
      credentials: 'include',
      headers: { authorization: `Bearer ${token}` },
      fetch: powFetch(),
    }),
    cache: new InMemoryCache(),
  });
}

/** `#/mod`: the moderators' page (reports queue and actions). */
export function ModView() {
  const [token, setToken] = useState(readToken);
  const client = useMemo(() => (token ? moderatorClient(token) : null), [token]);
  const signOut = () => {
    writeToken(null);
    setToken('');
  };
  return (
    <div className="mod">
      <header className="topbar">
        <span className="brand">Anonymo moderation</span>
        <a href="#/">Back to the chat</a>
        {client && (
          <button type="button" onClick={signOut} data-testid="mod-sign-out">
            Sign out
          </button>
        )}
      </header>
      {client ? (
        <ApolloProvider client={client}>
          <ModQueue onBadToken={signOut} />
        </ApolloProvider>
      ) : (
        <TokenForm
          onToken={(t) => {
            writeToken(t);
            setToken(t);
          }}
        />
      )}
    </div>
  );
}

function TokenForm({ onToken }: { onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return (
    <form className="mod-token" onSubmit={submit}>
      <label>
        Moderator token{' '}
        <input
          type="password"
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          data-testid="mod-token"
        />
      </label>
      <button type="submit" data-testid="mod-token-submit">
        Open the reports
      </button>
      <p className="hint">The token is kept in this tab only and sent with each request.</p>
    </form>
  );
}

type ReportNode = ReportsQuery['reports']['edges'][number]['node'];

function ModQueue({ onBadToken }: { onBadToken: () => void }) {
  const who = useQuery(IsModeratorDocument, { fetchPolicy: 'network-only' });
  const reports = useQuery(ReportsDocument, {
    variables: { first: 20 },
    fetchPolicy: 'network-only',
    // New reports arrive while the page is open.
    pollInterval: 10_000,
    skip: who.data?.isModerator !== true,
  });
  const [notice, setNotice] = useState<string | null>(null);

  if (who.error) return <p className="splash">Cannot reach the server ({who.error.message}).</p>;
  if (!who.data) return <p className="splash">Checking the token…</p>;
  if (!who.data.isModerator) {
    return (
      <p className="splash" data-testid="mod-denied">
        That is not a moderator token.{' '}
        <button type="button" onClick={onBadToken}>
          Try another
        </button>
      </p>
    );
  }
  const edges = reports.data?.reports.edges ?? [];
  return (
    <main className="mod-queue" data-testid="mod-queue">
      <h2>
        Reports <small>(newest first)</small>{' '}
        <button type="button" onClick={() => void reports.refetch()} data-testid="mod-refresh">
          Refresh
        </button>
      </h2>
      {notice && (
        <p className="notice" role="status" data-testid="mod-notice">
          {notice}
        </p>
      )}
      {reports.error && <p className="error">{reports.error.message}</p>}
      {reports.data && edges.length === 0 && <p data-testid="mod-empty">No open reports.</p>}
      {edges.map(({ node }) => (
        <ReportCard
          key={node.id}
          report={node}
          onDone={(message) => {
            setNotice(message);
            void reports.refetch();
          }}
        />
      ))}
    </main>
  );
}

function where(report: ReportNode): string {
  const m = report.message;
  if (m.room) return `Room “${m.room.title}”${m.room.public ? '' : ' (private)'}`;
  if (m.recipient) return `Direct message to ${m.recipient.username}`;
  return 'Lobby';
}

const BANS = [
  { label: 'Ban 1 h', hours: 1 },
  { label: 'Ban 24 h', hours: 24 },
  { label: 'Ban 7 d', hours: 168 },
] as const;

function ReportCard({ report, onDone }: { report: ReportNode; onDone: (message: string) => void }) {
  const m = report.message;
  const [clear] = useMutation(ClearReportDocument);
  const [remove] = useMutation(DeleteMessageDocument);
  const [ban] = useMutation(BanUserDocument);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const act = async (run: () => Promise<unknown>, done: string) => {
    setBusy(true);
    setError(null);
    try {
      await run();
      onDone(done);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const name = m.sender.username;
  return (
    <article className="report" data-testid="report" data-message-id={m.id}>
      <header>
        <span className="reasons" data-testid="report-reasons">
          {report.reasons.join(', ')}
        </span>{' '}
        <span data-testid="report-reporters">
          {report.reporters} reporter{report.reporters === 1 ? '' : 's'}
        </span>{' '}
        · <span>{where(report)}</span> ·{' '}
        <time dateTime={report.createdAt} title={fullTime(report.createdAt)}>
          reported {shortTime(report.createdAt)}
        </time>
      </header>
      <ReportContext report={report} />
      <div className="actions">
        <button
          type="button"
          disabled={busy || !!m.deletedAt}
          data-testid="mod-delete"
          onClick={() => act(() => remove({ variables: { id: m.id } }), `Deleted ${name}’s message`)}
        >
          Delete message
        </button>
        <button
          type="button"
          disabled={busy}
          data-testid="mod-clear"
          onClick={() => act(() => clear({ variables: { id: report.id } }), `Cleared the report on ${name}’s message`)}
        >
          Clear (it is fine)
        </button>
        {BANS.map((b) => (
          <button
            key={b.hours}
            type="button"
            disabled={busy}
            data-testid={`mod-ban-${b.hours}`}
            onClick={() =>
              act(
                () => ban({ variables: { id: m.sender.id, hours: b.hours } }),
                `Banned ${name} for ${b.label.slice(4)}`,
              )
            }
          >
            {b.label}
          </button>
        ))}
        <button
          type="button"
          disabled={busy}
          data-testid="mod-shadow-ban"
          title="Their messages seem to go out, but nobody else sees them (7 days)"
          onClick={() =>
            act(
              () => ban({ variables: { id: m.sender.id, hours: 168, shadow: true } }),
              `Shadow-banned ${name} for 7 d`,
            )
          }
        >
          Shadow ban 7 d
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </article>
  );
}

function Line({ message, reported }: { message: ModMessageFragment; reported?: boolean }) {
  return (
    <li className={reported ? 'reported' : undefined} data-testid={reported ? 'reported-message' : 'context-message'}>
      <strong>{message.sender.username}</strong>{' '}
      <time dateTime={message.createdAt} title={fullTime(message.createdAt)}>
        {shortTime(message.createdAt)}
      </time>
      : {message.deletedAt ? <em>message deleted</em> : <span data-testid="mod-message-text">{message.text}</span>}
    </li>
  );
}

/**
 * The reported message between the ones before and after it. The moderator's own identity
 * reads them, so context is shown where anyone may read: the lobby and public rooms.
 */
function ReportContext({ report }: { report: ReportNode }) {
  const m = report.message;
  const readable = !m.recipient && (!m.room || m.room.public);
  const context = useQuery(ReportContextDocument, {
    variables: { room: m.room?.id ?? null, before: m.cursor, after: m.cursor },
    skip: !readable,
    fetchPolicy: 'network-only',
  });
  const earlier = context.data?.earlier.edges.map((e) => e.node) ?? [];
  const later = context.data?.later.edges.map((e) => e.node) ?? [];
  return (
    <ol className="context">
      {earlier.map((c) => (
        <Line key={c.id} message={c} />
      ))}
      <Line message={m} reported />
      {later.map((c) => (
        <Line key={c.id} message={c} />
      ))}
      {!readable && <li className="hint">(a private conversation: only the reported message is shown)</li>}
    </ol>
  );
}
