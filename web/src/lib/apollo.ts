import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { getMainDefinition, relayStylePagination } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import { Kind, OperationTypeNode } from 'graphql';
import { ConnectionStatus } from './connection';
import { powFetch } from './pow';
import { ResumableWsLink } from './resumable-ws-link';

/** Reconnect delay: exponential from 0.5 s, capped at 10 s, with jitter so clients spread out. */
async function retryWait(retries: number): Promise<void> {
  const base = Math.min(500 * 2 ** retries, 10_000);
  await new Promise((resolve) => setTimeout(resolve, base / 2 + Math.random() * (base / 2)));
}

export interface Api {
  /** Distinct per instance (a React key: a new identity remounts the whole chat). */
  id: number;
  client: ApolloClient;
  connection: ConnectionStatus;
  /** Closes the socket for good and stops the client. */
  dispose(): void;
}

let instances = 0;

/**
 * Apollo Client for this origin: queries and mutations over HTTP with the session cookie,
 * subscriptions over graphql-ws on the same path (the browser sends the cookie with the
 * upgrade). The socket retries forever: the server restarting, a deploy or a flaky network
 * are routine, and resumable subscriptions catch up from where they were.
 */
export function createApi(): Api {
  const connection = new ConnectionStatus();
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  const ws = createClient({
    url: wsUrl,
    retryAttempts: Infinity,
    // Also after refusals such as 503 (server at capacity) or 429: they are temporary.
    shouldRetry: () => true,
    retryWait,
    // A socket that silently died (laptop sleep, NAT timeout) is noticed within ~20 s.
    keepAlive: 10_000,
    on: connection.on,
  });

  const link = ApolloLink.split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === Kind.OPERATION_DEFINITION && def.operation === OperationTypeNode.SUBSCRIPTION;
    },
    new ResumableWsLink(ws),
    // Proof-of-work demands (POW_REQUIRED) are met transparently: see lib/pow.ts.
    new HttpLink({ uri: '/graphql', credentials: 'include', fetch: powFetch(connection.setSolving) }),
  );

  const cache = new InMemoryCache({
    typePolicies: {
      Query: {
        fields: {
          // One list per conversation; older pages (`before`) are prepended to it.
          messages: relayStylePagination(['with', 'room']),
          onlineUsers: { merge: false },
          conversations: { merge: false },
        },
      },
      Message: {
        fields: {
          // Read is final. A response that left the server before the read receipt (the
          // sender's own sendMessage answer can arrive after the other user already read it)
          // must not turn "Seen" back into "Sent".
          readAt: {
            merge: (existing: string | null | undefined, incoming: string | null) => incoming ?? existing ?? null,
          },
        },
      },
    },
  });

  const client = new ApolloClient({ link, cache });
  return {
    id: ++instances,
    client,
    connection,
    dispose: () => {
      client.stop();
      // Rejects when a reconnect was pending (the server closed the old session's socket):
      // nothing is left to close then.
      Promise.resolve(ws.dispose()).catch(() => undefined);
    },
  };
}
