/**
 * fast-check arbitraries for the fuzzer: GraphQL documents (valid operations of the schema,
 * mutated ones, padded, deep, aliased, random text), variables of every JSON type with
 * Unicode edge cases, HTTP requests (well-formed and not), and graphql-ws frame sequences
 * (valid frames in any order, malformed and binary frames, connection_init abuse, bursts).
 *
 * Values the fuzzer only knows at run time (user and message ids) are placeholders, `@u0`..
 * `@u3` and `@m`, replaced just before sending.
 */
import fc from 'fast-check';

/** One valid operation per root field, with variables where the field takes arguments. */
export const VALID_OPERATIONS: readonly string[] = [
  '{ me { id username avatarUrl online lastSeenAt createdAt } }',
  'query Me { me { id } }',
  'query($with: ID, $last: Int, $before: String) { messages(with: $with, last: $last, before: $before) { edges { cursor node { id text mine clientId createdAt readAt sender { id username } recipient { id } } } pageInfo { hasPreviousPage hasNextPage startCursor endCursor } } }',
  'query($with: ID, $first: Int, $after: String) { messages(with: $with, first: $first, after: $after) { edges { node { id text } } } }',
  '{ onlineUsers { id username online } }',
  '{ conversations { with { id username } unreadCount lastMessage { id text mine } } }',
  'mutation($text: String!, $to: ID, $clientId: String) { sendMessage(input: { text: $text, to: $to, clientId: $clientId }) { id text clientId recipient { id } } }',
  'mutation($input: SendMessageInput!) { sendMessage(input: $input) { id text } }',
  'mutation($with: ID, $typing: Boolean!) { setTyping(with: $with, typing: $typing) }',
  'mutation($with: ID!, $upTo: ID!) { markRead(with: $with, upTo: $upTo) }',
  'mutation { resetIdentity { id username } }',
  'subscription($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id text sender { id } } }',
  'subscription { presenceChanged { online user { id username } } }',
  'subscription($with: ID) { typing(with: $with) { typing user { id } } }',
  'subscription($with: ID!) { messagesRead(with: $with) { count upTo { id } reader { id } } }',
  'subscription { conversationUpdated { unreadCount with { id } } }',
  'subscription Sub { messageAdded { ...M } } fragment M on Message { id text mine }',
];

export const SUBSCRIPTIONS = VALID_OPERATIONS.filter((q) => q.startsWith('subscription'));

/** Strings that have broken servers before: bad Unicode, invisible text, huge and empty values. */
const edgeStrings = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  '\ud800',
  'a\udc00b',
  '\u202e\u2066',
  '\u200b\u200b',
  '\u2028',
  '\u3164',
  `e${'\u0301'.repeat(300)}`,
  '👨‍👩‍👧‍👦',
  '1\ufe0f\u20e3',
  'x'.repeat(2001),
  'y'.repeat(70000),
  '{"$gt":""}',
  '__proto__',
  'lobby:000000000001',
  'bTA',
  'bTE',
  '@u0',
  '@u1',
  '@u2',
  '@u3',
  '@m',
);

export const fuzzString = fc.oneof(
  { weight: 3, arbitrary: edgeStrings },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
);

const fuzzValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fuzzString },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1, 100, 101, 2 ** 31, 2 ** 53, 1e308, -0, 0.5) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.record({ text: fuzzString, to: fuzzString, clientId: fuzzString }, { requiredKeys: [] }) },
);

const VARIABLE_NAMES = [
  'text',
  'to',
  'with',
  'after',
  'before',
  'first',
  'last',
  'clientId',
  'typing',
  'upTo',
  'input',
];

const userRef = fc.constantFrom('@u0', '@u1', '@u2', '@u3');
const smallInt = fc.oneof(fc.integer({ min: 0, max: 120 }), fc.constantFrom(-1, 201, 2 ** 31 - 1));

/** Variables of the right types (with hostile values), so most operations get past coercion. */
const typedVariables = fc.record(
  {
    text: fuzzString,
    to: fc.option(userRef, { nil: null }),
    with: fc.option(userRef, { nil: null }),
    clientId: fc.option(fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), fuzzString), { nil: null }),
    first: smallInt,
    last: smallInt,
    after: fc.oneof(fc.constantFrom('@m', 'bTA', 'bTE', 'bTI'), fuzzString),
    before: fc.constantFrom('bTE', 'bTI', 'bTk5'),
    typing: fc.boolean(),
    upTo: fc.oneof(fc.constant('@m'), fuzzString),
    input: fc.record({
      text: fuzzString,
      to: fc.option(userRef, { nil: null }),
      clientId: fc.option(fuzzString, { nil: null }),
    }),
  },
  { requiredKeys: ['text', 'typing'] },
);

export const variablesArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 12, arbitrary: typedVariables },
  { weight: 4, arbitrary: fc.dictionary(fc.constantFrom(...VARIABLE_NAMES), fuzzValue, { maxKeys: 6 }) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

const GRAPHQL_BITS = fc.constantFrom(
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ':',
  '$',
  '@',
  '!',
  '...',
  '=',
  '"',
  '"""',
  '#',
  '\n',
  ' ',
  'me',
  'id',
  '__typename',
  '__schema',
  '__type(name: "Query") { name }',
  'fragment',
  'on',
  'query',
  'mutation',
  'subscription',
  '@include(if: true)',
  '@skip(if: $x)',
  '@deprecated',
  'messages(last: 100)',
  'onlineUsers',
  'resetIdentity { id }',
  '\\u0000',
  '\ud800',
  '1e999',
);

type Mutation = (doc: string) => string;

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  // Insert a GraphQL token or random text somewhere.
  fc.tuple(fc.nat(), fc.oneof(GRAPHQL_BITS, fc.string({ maxLength: 8 }))).map(
    ([at, bit]) =>
      (doc: string) =>
        doc.slice(0, at % (doc.length + 1)) + bit + doc.slice(at % (doc.length + 1)),
  ),
  // Cut a piece out.
  fc.tuple(fc.nat(), fc.nat({ max: 20 })).map(
    ([at, n]) =>
      (doc: string) =>
        doc.slice(0, at % (doc.length + 1)) + doc.slice((at % (doc.length + 1)) + n),
  ),
  // A comment or a name long enough to matter (around the document size limit and far past it).
  fc.constantFrom(100, 8000, 8300, 60 * 1024).map((n) => (doc: string) => `#${'c'.repeat(n)}\n${doc}`),
  fc.constantFrom(200, 9000).map((n) => (doc: string) => doc.replace(/\{/, `{ a${'n'.repeat(n)}: __typename `)),
  // Many aliases of the first field.
  fc.integer({ min: 2, max: 40 }).map((n) => (doc: string) => {
    const m = /\{\s*(\w{1,40})/.exec(doc);
    if (!m) return doc;
    return doc.replace(
      m[0],
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${m[1]} { __typename }`).join(' ')} ${m[1]}`,
    );
  }),
  // Directives, repeated.
  // (Index arithmetic, not a regular expression: a word regex backtracks quadratically over a padded document.)
  fc.integer({ min: 1, max: 30 }).map((n) => (doc: string) => {
    const at = doc.indexOf('{', doc.indexOf('{') + 1);
    return at < 0 ? doc : `${doc.slice(0, at)} ${'@include(if: true) '.repeat(n)}${doc.slice(at)}`;
  }),
  // Deep nesting.
  fc.integer({ min: 5, max: 300 }).map((n) => (doc: string) => `{ ${'me { '.repeat(n)}id${' }'.repeat(n)} } ${doc}`),
  // A second operation, so operationName matters.
  fc
    .constantFrom(...VALID_OPERATIONS)
    .map(
      (other) => (doc: string) => `${doc}\n${other.replace(/^(query|mutation|subscription)?\s*(\(|\{)/, '$1 Other$2')}`,
    ),
);

export const documentArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...VALID_OPERATIONS) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.constantFrom(...VALID_OPERATIONS), fc.array(mutationArb, { minLength: 1, maxLength: 3 }))
      .map(([doc, ms]) => ms.reduce((d, m) => m(d), doc)),
  },
  { weight: 1, arbitrary: fc.array(GRAPHQL_BITS, { maxLength: 40 }).map((bits) => bits.join(' ')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }).map((n) => `${'{'.repeat(n)}${'}'.repeat(n)}`) },
);

/** `query` as clients send it: usually the document, sometimes another JSON type. */
const queryField: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 12, arbitrary: documentArb },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

const operationName: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 16, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom('Me', 'Other', 'Sub', 'Nope', '') },
  { weight: 1, arbitrary: fuzzValue },
);

export const requestBody = fc.record({
  query: queryField,
  variables: variablesArb,
  operationName,
  extensions: fc.oneof(
    { weight: 12, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  ),
});

export interface HttpCase {
  kind: 'http';
  client: number;
  method: 'POST' | 'GET';
  /** Sent as-is (POST), or as the query string's parameters (GET). */
  body: string;
  headers: Record<string, string>;
}

const contentTypes = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-16',
      'application/json; charset="<SCRIPT>X"',
      'text/plain',
      'application/graphql-response+json',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
    ),
  },
);

const someHeaders = fc.dictionary(
  fc.constantFrom('x-request-id', 'apollo-require-preflight', 'x-forwarded-for', 'accept', 'origin'),
  fc.oneof(
    fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
    fc.constantFrom('<script>', 'x'.repeat(200), 'http://localhost:1', 'https://evil.example', '::1', '*/*'),
  ),
  { maxKeys: 3 },
);
const extraHeaders = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Record<string, string>>({}) },
  { weight: 1, arbitrary: someHeaders },
);

/** Which fuzz identity sends a case; -1 is a client without a cookie (a new identity). */
const clientArb = fc.oneof(
  { weight: 30, arbitrary: fc.integer({ min: 0, max: 3 }) },
  { weight: 1, arbitrary: fc.constant(-1) },
);

export const httpCaseArb: fc.Arbitrary<HttpCase> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('http' as const),
      client: clientArb,
      method: fc.constant('POST' as const),
      body: requestBody.map((b) => JSON.stringify(b)),
      headers: fc.tuple(contentTypes, extraHeaders).map(([ct, h]) => ({ ...h, 'content-type': ct })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('http' as const),
      client: clientArb,
      method: fc.constant('POST' as const),
      body: fc.oneof(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.array(requestBody, { maxLength: 3 }).map((a) => JSON.stringify(a)),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc.constantFrom('{', '{"query":', 'null', '[]', '"x"', '{"query":"{ me { id } }"'),
      ),
      headers: fc.tuple(contentTypes, extraHeaders).map(([ct, h]) => ({ ...h, 'content-type': ct })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('http' as const),
      client: clientArb,
      method: fc.constant('GET' as const),
      body: requestBody.map((b) =>
        new URLSearchParams(
          Object.entries(b).flatMap(([k, v]) =>
            v === undefined ? [] : [[k, typeof v === 'string' ? v : JSON.stringify(v)] as [string, string]],
          ),
        ).toString(),
      ),
      headers: extraHeaders.map((h) => ({ ...h, 'apollo-require-preflight': 'true' })),
    }),
  },
);

/** A graphql-ws frame: text (usually JSON), binary, or a pause that lets the server answer. */
export type Frame = { t: 'text'; data: string } | { t: 'binary'; data: Uint8Array } | { t: 'settle' };

const idArb = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('1', '2', '3', 'a') },
  { weight: 1, arbitrary: fuzzString },
);

const json = (v: unknown) => ({ t: 'text' as const, data: JSON.stringify(v) });

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(json({ type: 'connection_init' })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((payload) => json({ type: 'connection_init', payload })) },
  {
    weight: 8,
    arbitrary: fc
      .record(
        { id: idArb, query: queryField, variables: variablesArb, operationName },
        { requiredKeys: ['id', 'query'] },
      )
      .map(({ id, ...payload }) => json({ id, type: 'subscribe', payload })),
  },
  { weight: 3, arbitrary: idArb.map((id) => json({ id, type: 'complete' })) },
  { weight: 1, arbitrary: fc.constantFrom('ping', 'pong').map((type) => json({ type })) },
  {
    weight: 1,
    arbitrary: fc
      .record(
        {
          type: fc.oneof(fc.constantFrom('next', 'error', 'connection_ack', 'subscribe', 'start', 'stop'), fuzzString),
          id: fc.jsonValue(),
          payload: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      )
      .map(json),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }).map((data) => ({ t: 'text' as const, data })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((data) => ({ t: 'binary' as const, data })) },
  { weight: 2, arbitrary: fc.constant({ t: 'settle' as const }) },
);

export interface WsCase {
  kind: 'ws';
  client: number;
  /**
   * `wait`: connection_init, then the frames once acknowledged (most clients); `eager`: the
   * frames right behind connection_init; `none`: no connection_init of its own.
   */
  init: 'wait' | 'eager' | 'none';
  frames: Frame[];
}

export interface BurstCase {
  kind: 'burst';
  client: number;
  query: string;
  variables: unknown;
  /** subscribe/complete pairs sent back to back. */
  pairs: number;
}

export const wsCaseArb: fc.Arbitrary<WsCase> = fc.record({
  kind: fc.constant('ws' as const),
  client: clientArb,
  init: fc.oneof(
    { weight: 8, arbitrary: fc.constant('wait' as const) },
    { weight: 1, arbitrary: fc.constant('eager' as const) },
    { weight: 1, arbitrary: fc.constant('none' as const) },
  ),
  frames: fc.array(frameArb, { minLength: 1, maxLength: 12 }),
});

export const burstCaseArb: fc.Arbitrary<BurstCase> = fc.record({
  kind: fc.constant('burst' as const),
  client: fc.integer({ min: 0, max: 3 }),
  query: fc.constantFrom(...SUBSCRIPTIONS),
  variables: fc.constantFrom({}, { with: '@u1' }, { with: '@u2', after: '@m' }, { after: 'bTA' }),
  pairs: fc.integer({ min: 1, max: 40 }),
});

export type FuzzCase = HttpCase | WsCase | BurstCase;

export const caseArb: fc.Arbitrary<FuzzCase> = fc.oneof(
  { weight: 5, arbitrary: httpCaseArb },
  { weight: 4, arbitrary: wsCaseArb },
  { weight: 1, arbitrary: burstCaseArb },
);
