/**
 * GraphQL validation shared by HTTP (Apollo) and WebSocket (graphql-ws), so that an
 * operation accepted on one transport is accepted on the other.
 */
import { LRUCache } from 'lru-cache';
import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import type { Config } from './config';
import { ErrorCode } from './errors';
import { operationLimitRules } from './security/limits';

type ValidationConfig = Pick<Config, 'introspection' | 'security'>;

/** Rules added to graphql-js's standard ones: introspection (when off) and the operation limits. */
export function extraValidationRules(config: ValidationConfig): ValidationRule[] {
  return [
    ...(config.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
    ...operationLimitRules(config.security.operations),
  ];
}

/**
 * Parses and validates an operation received over WebSocket. Parsed documents are cached
 * by text: thousands of subscribers sending the same subscription share one AST.
 */
export class OperationValidator {
  private readonly documents = new LRUCache<string, DocumentNode>({ max: 500 });
  private readonly rules: ValidationRule[];
  private readonly maxTokens: number;

  constructor(
    private readonly schema: GraphQLSchema,
    config: ValidationConfig,
  ) {
    this.rules = [...specifiedRules, ...extraValidationRules(config)];
    this.maxTokens = config.security.operations.maxTokens;
  }

  /** The document, or errors carrying GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED. */
  check(query: unknown): DocumentNode | GraphQLError[] {
    if (typeof query !== 'string') {
      return [new GraphQLError('query must be a string', { extensions: { code: ErrorCode.BAD_REQUEST } })];
    }
    const cached = this.documents.get(query);
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
    const errors = validate(this.schema, document, this.rules);
    if (errors.length) {
      return errors.map(
        (e) =>
          new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: ErrorCode.GRAPHQL_VALIDATION_FAILED } }),
      );
    }
    this.documents.set(query, document);
    return document;
  }
}
