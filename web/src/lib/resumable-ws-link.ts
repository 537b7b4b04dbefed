import { ApolloLink, CombinedGraphQLErrors, type FetchResult } from '@apollo/client';
import { print } from '@apollo/client/utilities';
import { Kind, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import type { Client } from 'graphql-ws';
import { Observable } from 'rxjs';

/** True when the operation declares `$after`: the server can resume it from a message id. */
function declaresAfter(query: DocumentNode): boolean {
  return query.definitions.some(
    (d) =>
      d.kind === Kind.OPERATION_DEFINITION && d.variableDefinitions?.some((v) => v.variable.name.value === 'after'),
  );
}

/**
 * Where to resume after the (single) root field's object in a result: its `updateCursor` for
 * update streams (`messageUpdated`), else its `id` (`messageAdded`).
 */
function rootId(data: unknown): string | undefined {
  if (!data || typeof data !== 'object') return undefined;
  for (const value of Object.values(data as Record<string, unknown>)) {
    const point = value as { id?: unknown; updateCursor?: unknown } | null;
    if (typeof point?.updateCursor === 'string') return point.updateCursor;
    if (typeof point?.id === 'string') return point.id;
  }
  return undefined;
}

/**
 * Apollo's terminating link for subscriptions over graphql-ws that never misses an event
 * across reconnects.
 *
 * graphql-ws re-sends each active subscription's `subscribe` payload (the same object) when it
 * reconnects. For operations with an `$after` variable this link keeps that payload's `after`
 * at the id of the newest result received, so the server replays exactly what was missed
 * while the socket was down (`messageAdded(with, after)`), then continues live: no gap, no
 * duplicate, and no extra round trip through React to restart the subscription.
 */
export class ResumableWsLink extends ApolloLink {
  constructor(private readonly client: Client) {
    super();
  }

  override request(operation: ApolloLink.Operation): Observable<FetchResult> {
    return new Observable<FetchResult>((observer) => {
      const payload = {
        query: print(operation.query),
        operationName: operation.operationName,
        variables: { ...operation.variables } as Record<string, unknown>,
        extensions: operation.extensions,
      };
      const resumable = declaresAfter(operation.query);
      let stop: (() => void) | undefined;
      let retryTimer: ReturnType<typeof setTimeout> | undefined;
      const start = () => {
        stop = this.client.subscribe<FetchResult['data']>(payload, {
          next: (result) => {
            const id = resumable ? rootId(result.data) : undefined;
            if (id) payload.variables = { ...payload.variables, after: id };
            observer.next(result as FetchResult);
          },
          complete: () => observer.complete(),
          error: (err: unknown) => {
            if (err instanceof Error) return observer.error(err);
            if (Array.isArray(err)) {
              // Refused for now (the server is catching up after a restart: too many replays
              // waiting): subscribe again, from the same point, when it says, with jitter.
              const wait = retryAfter(err as GraphQLFormattedError[]);
              if (wait !== undefined) {
                retryTimer = setTimeout(start, wait * (1 + Math.random()));
                return;
              }
              return observer.error(new CombinedGraphQLErrors({ errors: err as GraphQLFormattedError[] }));
            }
            const close = err as { code?: number; reason?: string };
            observer.error(
              new Error(`Socket closed${close?.code ? ` with event ${close.code} ${close.reason ?? ''}` : ''}`),
            );
          },
        });
      };
      start();
      return () => {
        clearTimeout(retryTimer);
        stop?.();
      };
    });
  }
}

/** The `retryAfterMs` of a RATE_LIMITED refusal (at most a minute), else undefined. */
function retryAfter(errors: readonly GraphQLFormattedError[]): number | undefined {
  const e = errors.find((x) => x.extensions?.code === 'RATE_LIMITED');
  const ms = Number(e?.extensions?.retryAfterMs);
  return e && Number.isFinite(ms) && ms > 0 ? Math.min(ms, 60_000) : undefined;
}
