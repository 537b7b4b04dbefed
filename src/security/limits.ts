/**
 * Operation limits (depth, aliases, directives) as graphql-js validation rules from
 * graphql-armor, shared by Apollo (HTTP) and the WebSocket OperationValidator so that both
 * transports accept exactly the same documents. The token limit is a parser option
 * (`maxTokens`), applied by both too.
 */
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { OperationLimits } from './security.config';

// graphql-armor throws by default, which aborts graphql-js's validate() with an exception
// (Apollo would answer 500). Reporting keeps it a normal GRAPHQL_VALIDATION_FAILED error.
const report = {
  propagateOnRejection: false,
  onReject: [(ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(error)],
};

/**
 * The armor rules for these limits, in addition to graphql-js's specified rules. The cost
 * limit needs the variables, so it runs per request (security/cost.ts), not here.
 */
export function operationLimitRules(limits: OperationLimits): ValidationRule[] {
  return [
    maxDepthRule({ n: limits.maxDepth, ...report }),
    maxAliasesRule({ n: limits.maxAliases, ...report }),
    maxDirectivesRule({ n: limits.maxDirectives, ...report }),
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

/**
 * A rule allowing each of `fieldNames` at most once among an operation's root fields
 * (aliases and fragments included): e.g. `resetIdentity`, which creates an identity each
 * time it runs.
 */
export function oncePerOperationRule(fieldNames: readonly string[]): ValidationRule {
  const names = new Set(fieldNames);
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(operation) {
      const counts = new Map<string, number>();
      const seen = new Set<string>();
      const walk = (set: SelectionSetNode): void => {
        for (const sel of set.selections) {
          if (sel.kind === Kind.FIELD) {
            if (names.has(sel.name.value)) counts.set(sel.name.value, (counts.get(sel.name.value) ?? 0) + 1);
          } else if (sel.kind === Kind.INLINE_FRAGMENT) walk(sel.selectionSet);
          else if (!seen.has(sel.name.value)) {
            seen.add(sel.name.value);
            const fragment = context.getFragment(sel.name.value);
            if (fragment) walk(fragment.selectionSet);
          }
        }
      };
      walk(operation.selectionSet);
      for (const [name, n] of counts) {
        if (n > 1)
          context.reportError(new GraphQLError(`${name} may appear at most once per operation`, { nodes: operation }));
      }
    },
  });
}
