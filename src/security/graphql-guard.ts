/**
 * Checks on GraphQL requests over HTTP that graphql-js validation cannot make: the document's
 * size before it is parsed, the cost with the request's variables, and subscriptions (served
 * over WebSocket only).
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';
import { OperationTypeNode } from 'graphql';
import { AppError, ErrorCode } from '../errors';
import { parse } from 'graphql';
import { documentTooLarge, rootDirectiveVariableError } from '../validation';
import { costError, type CostCache, type DefaultListSizes } from './cost';

export interface GuardOptions {
  maxDocumentBytes: number;
  maxCost: number;
  listSizes: DefaultListSizes;
}

function queriesOf(req: { body?: unknown; query?: unknown }): unknown[] {
  const body = req.body;
  const fromBody: unknown[] = Array.isArray(body) ? (body as unknown[]) : [body];
  return [...fromBody, req.query].map((p) =>
    p && typeof p === 'object' ? (p as { query?: unknown }).query : undefined,
  );
}

/** What Apollo would choke on, for documents that mention a subscription and a directive. */
function subscriptionRootError(query: string, maxTokens: number) {
  if (!query.includes('subscription') || !query.includes('@')) return null;
  try {
    return rootDirectiveVariableError(parse(query, { maxTokens }));
  } catch {
    return null; // not a document: Apollo answers GRAPHQL_PARSE_FAILED itself
  }
}

/**
 * Refuses (400) a request whose document is over the size limit, before Apollo parses it,
 * and one that graphql-js's validation would throw on (see rootDirectiveVariableError).
 */
export function documentSizeMiddleware(maxBytes: number, maxTokens: number): RequestHandler {
  return (req, res, next) => {
    for (const query of queriesOf(req)) {
      if (typeof query !== 'string') continue;
      const error = documentTooLarge(query, maxBytes) ?? subscriptionRootError(query, maxTokens);
      if (error) {
        return void res.status(400).json({ errors: [{ message: error.message, extensions: error.extensions }] });
      }
    }
    next();
  };
}

export const SUBSCRIPTION_OVER_HTTP =
  'Subscriptions are served over WebSocket only (graphql-transport-ws at the same path)';

/** Apollo plugin: subscriptions refused with 400, and the cost limit with the variables. */
export function operationGuardPlugin(options: GuardOptions): ApolloServerPlugin {
  const costs: CostCache = new WeakMap();
  return {
    requestDidStart: () =>
      Promise.resolve({
        didResolveOperation: ({ operation, document, operationName, request }) => {
          if (operation?.operation === OperationTypeNode.SUBSCRIPTION) {
            throw new AppError(SUBSCRIPTION_OVER_HTTP, ErrorCode.BAD_REQUEST, { http: { status: 400 } });
          }
          const error = costError(
            document,
            operationName,
            request.variables,
            options.maxCost,
            options.listSizes,
            costs,
          );
          if (error) throw error;
          return Promise.resolve();
        },
      }),
  };
}
