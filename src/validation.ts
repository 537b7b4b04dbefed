/**
 * GraphQL validation shared by HTTP (Apollo) and WebSocket (graphql-ws), so that an
 * operation accepted on one transport is accepted on the other.
 */
import type { DocumentStore } from '@apollo/server';
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import {
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  OperationTypeNode,
  parse,
  specifiedRules,
  validate,
  type DirectiveNode,
  type DocumentNode,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type { Config } from './config';
import { ErrorCode } from './errors';
import { oncePerOperationRule, operationLimitRules } from './security/limits';

type ValidationConfig = Pick<Config, 'introspection' | 'security'>;

/** Rules added to graphql-js's standard ones: introspection (when off) and the operation limits. */
export function extraValidationRules(config: ValidationConfig): ValidationRule[] {
  return [
    ...(config.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
    ...operationLimitRules(config.security.operations),
    // Each creates an identity: aliases would multiply them past the per-IP budget's checks.
    oncePerOperationRule(['resetIdentity']),
  ];
}

/** A short cache key for a document's text: caches must not keep what clients send verbatim. */
export function documentKey(query: string): string {
  return createHash('sha256').update(query).digest('base64url');
}

/** Rough bytes an AST takes per byte of its source text (for bounding the cache by memory). */
const AST_BYTES_PER_SOURCE_BYTE = 16;

/** What the parsed-document caches of both transports may hold, by the estimate above. */
const DOCUMENT_CACHE_BYTES = 16 * 1024 * 1024;

const astBytes = (doc: DocumentNode) => Math.max(1, (doc.loc?.end ?? 0) * AST_BYTES_PER_SOURCE_BYTE);

/**
 * Apollo Server's parsed-document cache (HTTP), bounded like the WebSocket one. Apollo's
 * default bounds the documents' JSON at 30 MiB, and a parsed document takes ~4.6 times its JSON
 * in the heap (the fuzzer measured 1.8 MiB for 395 KB): ~140 MiB at the bound.
 */
export function apolloDocumentStore(): DocumentStore {
  const cache = new LRUCache<string, DocumentNode>({
    max: 500,
    maxSize: DOCUMENT_CACHE_BYTES,
    sizeCalculation: astBytes,
  });
  return {
    get: (key) => Promise.resolve(cache.get(key)),
    set: (key, value) => {
      cache.set(key, value);
      return Promise.resolve();
    },
    delete: (key) => Promise.resolve(cache.delete(key)),
  };
}

/** The refusal of a document longer than GRAPHQL_MAX_DOCUMENT_BYTES, checked before parsing. */
export function documentTooLarge(query: string, maxBytes: number): GraphQLError | null {
  // Quick test first: a string of n UTF-16 units is at most 3n UTF-8 bytes.
  if (query.length * 3 <= maxBytes || Buffer.byteLength(query) <= maxBytes) return null;
  return new GraphQLError(`The GraphQL document is larger than ${maxBytes} bytes`, {
    extensions: { code: ErrorCode.BAD_REQUEST },
  });
}

/**
 * graphql-js 16's SingleFieldSubscriptionsRule evaluates @skip/@include at a subscription's
 * root without variable values, and throws when their argument is a variable, missing or not
 * a Boolean (found by the fuzzer: INTERNAL_SERVER_ERROR over HTTP, a logged stack and close
 * 4500 over WebSocket; the last two by the 100,000-case run).
 * Such documents are refused before validation, on both transports.
 */
export function rootDirectiveVariableError(document: DocumentNode): GraphQLError | null {
  // graphql-js evaluates @skip/@include on the root fields while validating and throws on a
  // variable, a missing `if` or a non-Boolean one (the fuzzer found all three).
  const unsafeDirective = (d: DirectiveNode): boolean => {
    if (d.arguments?.some((a) => a.value.kind === Kind.VARIABLE)) return true;
    if (d.name.value !== 'skip' && d.name.value !== 'include') return false;
    const condition = d.arguments?.find((a) => a.name.value === 'if');
    return condition?.value.kind !== Kind.BOOLEAN;
  };
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  const seen = new Set<string>();
  const hasUnsafeDirective = (set: SelectionSetNode): boolean =>
    set.selections.some((sel) => {
      if (sel.directives?.some(unsafeDirective)) return true;
      if (sel.kind === Kind.INLINE_FRAGMENT) return hasUnsafeDirective(sel.selectionSet);
      if (sel.kind === Kind.FRAGMENT_SPREAD && !seen.has(sel.name.value)) {
        seen.add(sel.name.value);
        const fragment = fragments.get(sel.name.value);
        return fragment ? hasUnsafeDirective(fragment.selectionSet) : false;
      }
      return false;
    });
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION || def.operation !== OperationTypeNode.SUBSCRIPTION) continue;
    if (hasUnsafeDirective(def.selectionSet)) {
      return new GraphQLError(
        "A subscription's root fields take @skip/@include only with a literal Boolean `if`, and no variables in directives",
        { extensions: { code: ErrorCode.GRAPHQL_VALIDATION_FAILED } },
      );
    }
  }
  return null;
}

/**
 * Parses and validates an operation received over WebSocket. Parsed documents are cached
 * by a hash of their text: thousands of subscribers sending the same subscription share one
 * AST. The cache is bounded by an estimate of its memory, not only by its entry count.
 */
export class OperationValidator {
  private readonly documents = new LRUCache<string, DocumentNode>({
    max: 500,
    maxSize: DOCUMENT_CACHE_BYTES,
    sizeCalculation: astBytes,
  });
  private readonly rules: ValidationRule[];
  private readonly maxTokens: number;
  private readonly maxBytes: number;

  constructor(
    private readonly schema: GraphQLSchema,
    config: ValidationConfig,
  ) {
    this.rules = [...specifiedRules, ...extraValidationRules(config)];
    this.maxTokens = config.security.operations.maxTokens;
    this.maxBytes = config.security.operations.maxDocumentBytes;
  }

  /** The document, or errors carrying GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED. */
  check(query: unknown): DocumentNode | GraphQLError[] {
    if (typeof query !== 'string') {
      return [new GraphQLError('query must be a string', { extensions: { code: ErrorCode.BAD_REQUEST } })];
    }
    const tooLarge = documentTooLarge(query, this.maxBytes);
    if (tooLarge) return [tooLarge];
    const key = documentKey(query);
    const cached = this.documents.get(key);
    if (cached) return cached;
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: this.maxTokens });
    } catch (err) {
      const e = err as GraphQLError;
      return [
        new GraphQLError(e.message, {
          source: e.source,
          positions: e.positions,
          extensions: { code: ErrorCode.GRAPHQL_PARSE_FAILED },
        }),
      ];
    }
    const rootError = rootDirectiveVariableError(document);
    if (rootError) return [rootError];
    let errors: readonly GraphQLError[];
    try {
      errors = validate(this.schema, document, this.rules);
    } catch (err) {
      // graphql-js's SingleFieldSubscriptionsRule evaluates @skip/@include while validating
      // and throws (instead of reporting) when their `if` is missing or ill-typed, before the
      // rule that would report it has run (found by the fuzzer). Such a document is invalid.
      if (!(err instanceof GraphQLError)) throw err;
      errors = [err];
    }
    if (errors.length) {
      return errors.map(
        (e) =>
          new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: ErrorCode.GRAPHQL_VALIDATION_FAILED } }),
      );
    }
    this.documents.set(key, document);
    return document;
  }
}
