/**
 * Decides which subscribers can share one execution of an event.
 *
 * Two subscriptions to the same topic get byte-identical results when they send the same
 * document with the same values for the variables used inside the subscription field's
 * selection, and select no field whose value depends on the viewer. Such subscribers form
 * one group: the event is executed and serialised once for the group, and only the
 * subscription id differs in the frames written to their sockets.
 */
import {
  Kind,
  getNamedType,
  getOperationAST,
  isCompositeType,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValueNode,
  type DirectiveNode,
  type ArgumentNode,
} from 'graphql';
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/**
 * The field extension that marks a field whose value depends on who is asking (set with
 * type-graphql's `@Extensions({ viewerDependent: true })`); subscribers selecting it are
 * executed per viewer. Read from the schema, so the planner needs no registry of its own.
 */
export const VIEWER_DEPENDENT = 'viewerDependent';

function readsViewer(field: { extensions?: Readonly<Record<string, unknown>> | null } | undefined): boolean {
  return field?.extensions?.[VIEWER_DEPENDENT] === true;
}

export interface Analysis {
  viewerDependent: boolean;
  /** Variables whose values can change the result of executing an event. */
  selectionVariables: string[];
}

export interface Plan {
  /** Subscribers with equal keys receive identical payloads. */
  key: string;
  viewerDependent: boolean;
  /** FANOUT=per-subscriber: graphql-js executes every event for every subscriber (the baseline). */
  perSubscriber: boolean;
  document: DocumentNode;
  operationName?: string | null;
  variables: Record<string, unknown>;
}

function variablesIn(nodes: ReadonlyArray<ArgumentNode | DirectiveNode> | undefined, out: Set<string>): void {
  const visitValue = (v: ValueNode): void => {
    if (v.kind === Kind.VARIABLE) out.add(v.name.value);
    else if (v.kind === Kind.LIST) v.values.forEach(visitValue);
    else if (v.kind === Kind.OBJECT) v.fields.forEach((f) => visitValue(f.value));
  };
  for (const n of nodes ?? []) {
    if (n.kind === Kind.ARGUMENT) visitValue(n.value);
    else n.arguments?.forEach((a) => visitValue(a.value));
  }
}

export function analyze(schema: GraphQLSchema, document: DocumentNode, operationName?: string | null): Analysis {
  const operation = getOperationAST(document, operationName);
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const vars = new Set<string>();
  let viewerDependent = false;

  const walk = (
    set: SelectionSetNode | undefined,
    parent: GraphQLCompositeType | null | undefined,
    seen: Set<string>,
  ): void => {
    if (!set) return;
    for (const sel of set.selections) {
      variablesIn(sel.directives, vars);
      if (sel.kind === Kind.FIELD) {
        variablesIn(sel.arguments, vars);
        const name = sel.name.value;
        const fieldDef = parent && 'getFields' in parent ? parent.getFields()[name] : undefined;
        if (readsViewer(fieldDef)) viewerDependent = true;
        const next = fieldDef ? getNamedType(fieldDef.type) : undefined;
        walk(sel.selectionSet, next && isCompositeType(next) ? next : null, seen);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const t = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent;
        walk(sel.selectionSet, t && isCompositeType(t) ? t : null, seen);
      } else {
        const name = sel.name.value;
        if (seen.has(name)) continue;
        const frag = fragments.get(name);
        if (!frag) continue;
        const t = schema.getType(frag.typeCondition.name.value);
        walk(frag.selectionSet, t && isCompositeType(t) ? t : null, new Set([...seen, name]));
      }
    }
  };

  const root = schema.getSubscriptionType();
  for (const sel of operation?.selectionSet.selections ?? []) {
    // The root field's own arguments pick the topic and the replay start; they do not
    // change how an event renders, so subscribers differing only there still share.
    variablesIn(sel.directives, vars);
    if (sel.kind === Kind.FIELD) {
      const def = root?.getFields()[sel.name.value];
      const t = def ? getNamedType(def.type) : undefined;
      if (readsViewer(def)) viewerDependent = true;
      walk(sel.selectionSet, t && isCompositeType(t) ? t : null, new Set());
    } else {
      // Fragments at the root: be conservative and treat every variable as significant.
      walk({ kind: Kind.SELECTION_SET, selections: [sel] }, root, new Set());
      for (const v of operation?.variableDefinitions ?? []) vars.add(v.variable.name.value);
    }
  }
  return { viewerDependent, selectionVariables: [...vars].sort() };
}

/**
 * Builds plans, caching the analysis per distinct document. Keys are hashes of the text,
 * never the text itself, and a plan lives only while subscribers use it: a client sending
 * ever new (or padded) documents leaves nothing behind once its subscriptions end.
 */
export class Planner {
  private readonly cache = new LRUCache<string, Analysis>({ max: 1000 });
  /** Plans in use, by key, with their number of subscribers. */
  private readonly plans = new Map<string, { plan: Plan; refs: number }>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly perSubscriber = false,
  ) {}

  plan(
    query: string,
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: Record<string, unknown>,
    viewerId: string,
  ): Plan {
    const cacheKey = createHash('sha256')
      .update(`${operationName ?? ''}\u0000${query}`)
      .digest('base64url');
    let a = this.cache.get(cacheKey);
    if (!a) {
      a = analyze(this.schema, document, operationName);
      this.cache.set(cacheKey, a);
    }
    const significant = a.selectionVariables.map((v) => [v, variables[v] ?? null]);
    const key = `${cacheKey}\u0000${JSON.stringify(significant)}${a.viewerDependent ? `\u0000${viewerId}` : ''}`;
    // Subscribers of one group share one Plan (and one key string) instead of a copy each.
    let entry = this.plans.get(key);
    if (!entry) {
      const plan = {
        key,
        viewerDependent: a.viewerDependent,
        perSubscriber: this.perSubscriber,
        document,
        operationName,
        variables,
      };
      this.plans.set(key, (entry = { plan, refs: 0 }));
    }
    entry.refs++;
    return entry.plan;
  }

  /** A subscriber of `plan` ended; the last one drops it. */
  release(plan: Plan): void {
    const entry = this.plans.get(plan.key);
    if (!entry || entry.plan !== plan) return;
    if (--entry.refs <= 0) this.plans.delete(plan.key);
  }

  /** Plans in use (leak checks). */
  get size(): number {
    return this.plans.size;
  }
}
