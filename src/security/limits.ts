/**
 * Operation limits (depth, aliases, directives, cost) as graphql-js validation rules from
 * graphql-armor, shared by Apollo (HTTP) and the WebSocket OperationValidator so that both
 * transports accept exactly the same documents. The token limit is a parser option
 * (`maxTokens`), applied by both too.
 */
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import type { GraphQLError, ValidationContext, ValidationRule } from 'graphql';
import type { OperationLimits } from './security.config';

// graphql-armor throws by default, which aborts graphql-js's validate() with an exception
// (Apollo would answer 500). Reporting keeps it a normal GRAPHQL_VALIDATION_FAILED error.
const report = {
  propagateOnRejection: false,
  onReject: [(ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(error)],
};

/** The armor rules for these limits, in addition to graphql-js's specified rules. */
export function operationLimitRules(limits: OperationLimits): ValidationRule[] {
  return [
    maxDepthRule({ n: limits.maxDepth, ...report }),
    maxAliasesRule({ n: limits.maxAliases, ...report }),
    maxDirectivesRule({ n: limits.maxDirectives, ...report }),
    costLimitRule({ maxCost: limits.maxCost, ...report }),
  ];
}

const SUGGESTION = /\s*Did you mean .+\?/g;

/**
 * Removes graphql-js's "Did you mean ...?" hints, which would let anyone enumerate the schema
 * field by field with introspection off.
 */
export function hideSuggestions(message: string): string {
  return message.replace(SUGGESTION, '').trim();
}
