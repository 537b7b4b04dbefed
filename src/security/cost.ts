/**
 * The cost limit, computed per request with the operation's variables: graphql-armor's
 * cost-limit rule prices `first: $n` as 1 and a list without a size argument as one object,
 * because validation rules never see variables. Same model as graphql-armor's (object 2,
 * scalar 1, x1.5 per level, fragments priced once per operation), with every list field
 * multiplied by the size it will return: its `first`/`last` argument (literal, variable or
 * the variable's default), else the field's default page size.
 */
import {
  Kind,
  getOperationAST,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { AppError, ErrorCode } from '../errors';

const OBJECT_COST = 2;
const SCALAR_COST = 1;
const DEPTH_FACTOR = 1.5;

/**
 * What a list field returns when the client gives no size: field name to size. Fields not
 * listed here are single objects (or lists priced by their `first`/`last`).
 */
export type DefaultListSizes = Readonly<Record<string, number>>;

function argSize(
  field: FieldNode,
  variables: Record<string, unknown>,
  defaults: Map<string, ValueNode>,
  reads: { variables: boolean },
): number | null {
  let size: number | null = null;
  for (const arg of field.arguments ?? []) {
    if (arg.name.value !== 'first' && arg.name.value !== 'last') continue;
    let value: unknown;
    if (arg.value.kind === Kind.INT) value = Number(arg.value.value);
    else if (arg.value.kind === Kind.VARIABLE) {
      reads.variables = true;
      const name = arg.value.name.value;
      if (variables[name] !== undefined) value = variables[name];
      else {
        const d = defaults.get(name);
        value = d?.kind === Kind.INT ? Number(d.value) : undefined;
      }
    }
    // A non-integer fails coercion before anything runs; it is priced as one item.
    if (value === undefined || value === null) continue;
    // Outside GraphQL's Int range coercion refuses the value (BAD_USER_INPUT) before anything runs.
    const n = typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 2 ** 31 - 1 ? value : 1;
    size = Math.max(size ?? 0, n);
  }
  return size;
}

/**
 * Costs of operations that do not depend on their variables, by document (Apollo hands out
 * the same parsed document for the same text) and operation name: most operations, such as
 * `sendMessage`, are priced once rather than on every request.
 */
export type CostCache = WeakMap<DocumentNode, Map<string, number>>;

/** The operation's cost with these variables (introspection's `__schema` is free, as in graphql-armor). */
export function operationCost(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
  listSizes: DefaultListSizes,
  cache?: CostCache,
): number {
  const key = operationName ?? '';
  const cached = cache?.get(document)?.get(key);
  if (cached !== undefined) return cached;
  const operation = getOperationAST(document, operationName);
  if (!operation) return 0;
  const vars = variables ?? {};
  // Set by argSize when a size is a variable: then the cost is not cached.
  const reads = { variables: false };
  const defaults = new Map<string, ValueNode>();
  for (const d of operation.variableDefinitions ?? []) {
    if (d.defaultValue) defaults.set(d.variable.name.value, d.defaultValue);
  }
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  // Each fragment is priced once; a spread of one being priced (a cycle) costs nothing more.
  const fragmentCosts = new Map<string, number>();

  const selectionSetCost = (set: SelectionSetNode): number => {
    let cost = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) cost += DEPTH_FACTOR * fieldCost(sel);
      else if (sel.kind === Kind.INLINE_FRAGMENT)
        cost += DEPTH_FACTOR * (OBJECT_COST + selectionSetCost(sel.selectionSet));
      else {
        const name = sel.name.value;
        let c = fragmentCosts.get(name);
        if (c === undefined) {
          fragmentCosts.set(name, 0);
          const frag = fragments.get(name);
          c = frag ? selectionSetCost(frag.selectionSet) : 0;
          fragmentCosts.set(name, c);
        }
        cost += SCALAR_COST + DEPTH_FACTOR * c;
      }
    }
    return cost;
  };

  const fieldCost = (field: FieldNode): number => {
    if (field.name.value === '__schema') return 0;
    if (!field.selectionSet) return SCALAR_COST;
    const size = argSize(field, vars, defaults, reads) ?? listSizes[field.name.value] ?? 1;
    return size * (OBJECT_COST + selectionSetCost(field.selectionSet));
  };

  let total = 0;
  for (const sel of operation.selectionSet.selections) {
    if (sel.kind === Kind.FIELD) total += fieldCost(sel);
    else total += selectionSetCost({ kind: Kind.SELECTION_SET, selections: [sel] });
  }
  if (cache && !reads.variables) {
    let byName = cache.get(document);
    if (!byName) cache.set(document, (byName = new Map<string, number>()));
    byName.set(key, total);
  }
  return total;
}

/** The GRAPHQL_VALIDATION_FAILED error for an operation over the limit, or null. */
export function costError(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
  maxCost: number,
  listSizes: DefaultListSizes,
  cache?: CostCache,
): AppError | null {
  const cost = operationCost(document, operationName, variables, listSizes, cache);
  if (cost <= maxCost) return null;
  return new AppError(
    `Query Cost limit of ${maxCost} exceeded, found ${Math.ceil(cost)}.`,
    ErrorCode.GRAPHQL_VALIDATION_FAILED,
    {
      http: { status: 400 },
    },
  );
}
