/**
 * The hostile-input suite: several hundred generated requests an open anonymous chat gets
 * from scripts, fuzzers and curious visitors. For every case: the expected error code (or
 * HTTP status, or WebSocket close code), never a 5xx or INTERNAL_SERVER_ERROR, the server
 * still answering the next normal request, and no document added or removed.
 *
 * Hostile requests carry an established cookie: a cookieless request that reaches the API
 * legitimately creates an identity, which is not what is being tested here.
 */
import type { GraphQLFormattedError } from 'graphql';
import { TestClient, type WsTestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { countDocuments, RawSocket, upgrade } from '../helpers/raw-ws';
import { startServer, type TestServer } from '../helpers/server';

type Transport = 'http' | 'ws';
interface Case {
  category: string;
  name: string;
  /** Performs the hostile action and asserts its expected outcome (throws otherwise). */
  run(): Promise<void>;
  /** Also check the WebSocket side still answers. */
  ws?: boolean;
  /** Runs against the server with tight limits. */
  limits?: boolean;
}

let server: TestServer;
let limited: TestServer;
let db: Awaited<ReturnType<typeof openDb>>;
let limitedDb: Awaited<ReturnType<typeof openDb>>;
let browser: TestClient;
let limitedBrowser: TestClient;
let me: { id: string; username: string };
let other: { id: string };
let gqlWs: WsTestClient;
let healthWs: WsTestClient;
let baseline: Record<string, number>;
let limitedBaseline: Record<string, number>;
const tally = { ran: 0, passed: 0, byCategory: new Map<string, number>() };

const USER_ID = /^[0-9a-f]{24}$/;
const OWN_ID = '<own id>';
const OTHER_ID = '<other id>';
const resolveIds = (v: unknown): unknown => {
  if (v === OWN_ID) return me.id;
  if (v === OTHER_ID) return other.id;
  if (Array.isArray(v)) return v.map(resolveIds);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveIds(x)]));
  return v;
};

function assertNoServerFault(errors: readonly GraphQLFormattedError[] | undefined, status?: number): void {
  if (status !== undefined && status >= 500) throw new Error(`server answered ${status}`);
  for (const e of errors ?? []) {
    if (e.extensions?.code === 'INTERNAL_SERVER_ERROR') throw new Error(`INTERNAL_SERVER_ERROR: ${e.message}`);
    if (e.extensions && 'stacktrace' in e.extensions) throw new Error('stacktrace leaked');
  }
}

function expectCode(errors: readonly GraphQLFormattedError[] | undefined, code: string, context: string): void {
  const got = errors?.[0]?.extensions?.code;
  if (got !== code) throw new Error(`${context}: expected ${code}, got ${JSON.stringify(errors ?? 'no errors')}`);
}

// ---------------------------------------------------------------------------------------
// Case builders
// ---------------------------------------------------------------------------------------

const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

/** A raw HTTP POST body with the established cookie. */
function httpBody(
  category: string,
  name: string,
  body: string | Buffer,
  expected: { status?: number; code: string },
  headers: Record<string, string> = {},
): void {
  add({
    category,
    name: `HTTP ${name}`,
    run: async () => {
      const res = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: browser.cookie!, ...headers },
        body: typeof body === 'string' ? body : new Uint8Array(body),
      });
      const text = await res.text();
      let parsed: { errors?: GraphQLFormattedError[]; data?: unknown };
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Error(`non-JSON answer ${res.status}: ${text.slice(0, 200)}`);
      }
      assertNoServerFault(parsed.errors, res.status);
      if (expected.status !== undefined && res.status !== expected.status) {
        throw new Error(`expected status ${expected.status}, got ${res.status}: ${text.slice(0, 300)}`);
      }
      expectCode(parsed.errors, expected.code, name);
    },
  });
}

/** A GraphQL operation sent over HTTP and, as a separate case, over WebSocket. */
function operation(
  category: string,
  name: string,
  query: string,
  variables: Record<string, unknown> | undefined,
  code: string | { http: string; ws: string },
  transports: Transport[] = ['http', 'ws'],
): void {
  for (const transport of transports) {
    const expected = typeof code === 'string' ? code : code[transport];
    add({
      category,
      name: `${transport.toUpperCase()} ${name}`,
      ws: transport === 'ws',
      run: async () => {
        const vars = resolveIds(variables) as Record<string, unknown> | undefined;
        if (transport === 'http') {
          const r = await browser.gql(query, vars);
          assertNoServerFault(r.errors, r.status);
          expectCode(r.errors, expected, name);
          const data = r.data as Record<string, unknown> | null | undefined;
          if (data && Object.values(data).some((v) => v !== null))
            throw new Error(`partial data: ${JSON.stringify(data)}`);
        } else {
          const r = await gqlWs.query(query, vars);
          assertNoServerFault(r.errors);
          expectCode(r.errors, expected, name);
        }
      },
    });
  }
}

/** Raw frames on a fresh WebSocket (with the cookie); expects a close code or an error message. */
function frames(
  category: string,
  name: string,
  opts: {
    init?: boolean;
    send: Array<string | Buffer | (() => string)>;
    close?: number;
    errorCode?: string;
    /** Sub-protocol to offer; null offers none. */
    protocol?: string | null;
    timeoutMs?: number;
    /** graphql-ws reports this case with console.error: expect (and silence) that. */
    logsError?: RegExp;
  },
): void {
  add({
    category,
    name: `WS ${name}`,
    ws: true,
    run: async () => {
      const headers = { cookie: browser.cookie! };
      const consoleError = opts.logsError
        ? jest.spyOn(console, 'error').mockImplementation(() => undefined)
        : undefined;
      const r = await upgrade(
        server.wsUrl,
        headers,
        opts.protocol === undefined ? 'graphql-transport-ws' : opts.protocol,
      );
      if (!r.ws) throw new Error(`upgrade refused: ${r.status}`);
      const raw = new RawSocket(r.ws);
      try {
        if (opts.init) await raw.init();
        for (const f of opts.send) raw.send(typeof f === 'function' ? f() : f, Buffer.isBuffer(f));
        if (opts.close !== undefined) {
          const { code } = await raw.closeCode(opts.timeoutMs ?? 5000);
          if (code !== opts.close)
            throw new Error(`expected close ${opts.close}, got ${code}; messages ${JSON.stringify(raw.messages)}`);
        } else {
          const m = await raw.next((x) => x.type === 'error' || x.type === 'next');
          const errors = (
            m.type === 'error' ? m.payload : (m.payload as { errors?: unknown }).errors
          ) as GraphQLFormattedError[];
          assertNoServerFault(errors);
          expectCode(errors, opts.errorCode!, name);
          if (!raw.open) throw new Error('socket closed after an operation error');
        }
        if (consoleError && !consoleError.mock.calls.some((args) => opts.logsError!.test(String(args[0])))) {
          throw new Error('expected graphql-ws to log the error');
        }
      } finally {
        consoleError?.mockRestore();
        await raw.close();
      }
    },
  });
}

/** An upgrade attempt expected to be refused with `status`. */
function refusedUpgrade(
  category: string,
  name: string,
  headers: () => Record<string, string>,
  status: number,
  onLimited = false,
): void {
  add({
    category,
    name: `WS upgrade ${name}`,
    ws: true,
    limits: onLimited,
    run: async () => {
      const r = await upgrade(onLimited ? limited.wsUrl : server.wsUrl, headers());
      if (r.ws) {
        r.ws.close();
        throw new Error(`upgrade accepted, expected ${status}`);
      }
      if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.body}`);
    },
  });
}

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

const ME = '{ me { id } }';
const MESSAGES =
  'query($with: ID, $first: Int, $last: Int, $after: String, $before: String) { messages(with: $with, first: $first, last: $last, after: $after, before: $before) { edges { cursor } } }';
const SEND = 'mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const SEND_VARS =
  'mutation($text: String!, $to: ID, $clientId: String) { sendMessage(input: { text: $text, to: $to, clientId: $clientId }) { id } }';
const ADDED = 'subscription($with: ID, $after: String) { messageAdded(with: $with, after: $after) { id } }';

// 1. Malformed JSON and malformed requests (HTTP).
{
  const c = 'malformed JSON';
  const bad: Array<[string, string | Buffer]> = [
    ['empty body', ''],
    ['lone brace', '{'],
    ['closing brace', '}'],
    ['truncated object', '{"query":'],
    ['unterminated string', '{"query": "{ me { id } }'],
    ['missing closing brace', '{"query": "{ me { id } }"'],
    ['trailing garbage', '{"query": "{ me { id } }"}}'],
    ['trailing comma', '{"query": "{ me { id } }",}'],
    ['single quotes', "{'query': '{ me { id } }'}"],
    ['unquoted key', '{query: "{ me { id } }"}'],
    ['NaN literal', '{"query": NaN}'],
    ['undefined literal', '{"query": undefined}'],
    ['bad escape', '{"query": "\\x41"}'],
    ['raw control character in string', '{"query": "{ me\u0001 { id } }"}'],
    ['comment in JSON', '/* hi */ {"query": "{ me { id } }"}'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
    ['whitespace only', ' '.repeat(1000)],
    ['deeply nested arrays', '['.repeat(20000) + ']'.repeat(20000)],
    ['deeply nested objects', '{"a":'.repeat(5000) + '1' + '}'.repeat(5000)],
    ['NUL bytes', '\u0000\u0000\u0000'],
    ['JSON string', '"{ me { id } }"'],
    ['JSON number', '42'],
    ['JSON true', 'true'],
  ];
  for (const [name, body] of bad) httpBody(c, name, body, { status: 400, code: 'BAD_REQUEST' });
  const badRequests: Array<[string, string]> = [
    ['JSON null', 'null'],
    ['empty object', '{}'],
    ['empty array (batch)', '[]'],
    ['batched operations', '[{"query":"{ me { id } }"},{"query":"{ me { id } }"}]'],
    ['query is a number', '{"query": 1}'],
    ['query is null', '{"query": null}'],
    ['query is an array', '{"query": ["{ me { id } }"]}'],
    ['query is an operator object', '{"query": {"$gt": ""}}'],
    ['query is empty', '{"query": ""}'],
    ['variables is a string', '{"query": "{ me { id } }", "variables": "{}"}'],
    ['variables is an array', '{"query": "{ me { id } }", "variables": [1, 2]}'],
    ['variables is a number', '{"query": "{ me { id } }", "variables": 5}'],
    ['operationName is a number', '{"query": "{ me { id } }", "operationName": 5}'],
    ['operationName is an object', '{"query": "{ me { id } }", "operationName": {"$ne": null}}'],
    ['extensions is a string', '{"query": "{ me { id } }", "extensions": "x"}'],
    ['variables only', '{"variables": {}}'],
  ];
  for (const [name, body] of badRequests) httpBody(c, name, body, { status: 400, code: 'BAD_REQUEST' });
  httpBody(c, 'unknown operationName', '{"query": "query A { me { id } }", "operationName": "B"}', {
    code: 'OPERATION_RESOLUTION_FAILURE',
  });
  httpBody(c, 'several operations without operationName', '{"query": "query A { me { id } } query B { me { id } }"}', {
    code: 'OPERATION_RESOLUTION_FAILURE',
  });
  httpBody(
    c,
    'unknown persisted query hash',
    '{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "' + 'a'.repeat(64) + '"}}}',
    { code: 'PERSISTED_QUERY_NOT_FOUND' },
  );
  httpBody(
    c,
    'persisted query hash mismatch',
    '{"query": "{ me { id } }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "' +
      'b'.repeat(64) +
      '"}}}',
    { status: 400, code: 'BAD_USER_INPUT' },
  );
  httpBody(
    c,
    'unsupported charset',
    '{"query": "{ me { id } }"}',
    { status: 415, code: 'BAD_REQUEST' },
    { 'content-type': 'application/json; charset=latin1' },
  );
  httpBody(
    c,
    'text/plain simple request (CSRF)',
    '{"query": "{ me { id } }"}',
    { status: 400, code: 'BAD_REQUEST' },
    { 'content-type': 'text/plain' },
  );
  httpBody(
    c,
    'form-encoded simple request (CSRF)',
    'query=%7B%20me%20%7B%20id%20%7D%20%7D',
    { status: 400, code: 'BAD_REQUEST' },
    { 'content-type': 'application/x-www-form-urlencoded' },
  );
  httpBody(
    c,
    'multipart simple request (CSRF)',
    '--x\r\n\r\n{}\r\n--x--',
    { status: 400, code: 'BAD_REQUEST' },
    { 'content-type': 'multipart/form-data; boundary=x' },
  );
  httpBody(c, 'body over 64 KiB', JSON.stringify({ query: ME, variables: { pad: 'x'.repeat(70 * 1024) } }), {
    status: 413,
    code: 'BAD_REQUEST',
  });
  httpBody(c, 'body of 1 MiB', 'x'.repeat(1024 * 1024), { status: 413, code: 'BAD_REQUEST' });
}

// 2. Invalid GraphQL.
{
  const c = 'invalid GraphQL';
  const parse = 'GRAPHQL_PARSE_FAILED';
  const invalid = 'GRAPHQL_VALIDATION_FAILED';
  const docs: Array<[string, string, string | { http: string; ws: string }]> = [
    ['lone brace', '{', parse],
    ['unbalanced braces', '{ me { id }', parse],
    ['extra closing brace', '{ me { id } } }', parse],
    ['keyword only', 'mutation', parse],
    ['reversed braces', '}{', parse],
    ['empty variable type', 'query Q($x: ) { me { id } }', parse],
    ['unterminated string', '{ me { id(a: "x) } }', parse],
    ['comment only', '# nothing here', parse],
    ['NUL character', '{ me\u0000 { id } }', parse],
    ['invalid character', '{ me { id } } ☃', parse],
    ['bad number', '{ messages(first: 1.2.3) { edges { cursor } } }', parse],
    ['empty document', '', { http: 'BAD_REQUEST', ws: parse }],
    ['unknown field', '{ nope }', invalid],
    ['unknown nested field', '{ me { nope } }', invalid],
    ['missing selection set', '{ me }', invalid],
    ['selection on a scalar', '{ me { id { x } } }', invalid],
    ['unknown argument', '{ me { id(arg: 1) } }', invalid],
    ['unknown argument on messages', '{ messages(bogus: 1) { edges { cursor } } }', invalid],
    ['wrong literal type', '{ messages(first: "ten") { edges { cursor } } }', invalid],
    ['Int literal overflow', '{ messages(first: 99999999999) { edges { cursor } } }', invalid],
    ['null for a non-null argument', 'mutation { sendMessage(input: null) { id } }', invalid],
    ['missing required input field', 'mutation { sendMessage(input: {}) { id } }', invalid],
    ['unknown input field', 'mutation { sendMessage(input: { text: "x", $gt: 1 }) { id } }', parse],
    ['unknown input field name', 'mutation { sendMessage(input: { text: "x", where: "1" }) { id } }', invalid],
    ['duplicate operation names', 'query A { me { id } } query A { me { id } }', invalid],
    ['anonymous operation among several', '{ me { id } } query B { me { id } }', invalid],
    ['unused variable', 'query($a: Int) { me { id } }', invalid],
    ['undefined variable', '{ messages(first: $n) { edges { cursor } } }', invalid],
    ['variable of an unknown type', 'query($a: Bogus) { messages(with: $a) { edges { cursor } } }', invalid],
    ['variable of an output type', 'query($a: User) { me { id } }', invalid],
    ['fragment cycle', 'fragment F on User { ...G } fragment G on User { ...F } { me { ...F } }', invalid],
    ['self-referencing fragment', 'fragment F on User { id ...F } { me { ...F } }', invalid],
    ['unknown fragment', '{ me { ...Missing } }', invalid],
    ['unused fragment', 'fragment F on User { id } { me { id } }', invalid],
    ['fragment on a wrong type', 'fragment F on Message { id } { me { ...F } }', invalid],
    ['unknown directive', '{ me { id @nonexistent } }', invalid],
    ['directive without its argument', '{ me { id @include } }', invalid],
    ['directive with a wrong argument type', '{ me { id @include(if: "yes") } }', invalid],
    ['repeated non-repeatable directive', '{ me { id @skip(if: false) @skip(if: true) } }', invalid],
    ['subscription with two root fields', 'subscription { a: messageAdded { id } b: messageAdded { id } }', invalid],
    ['field that only exists on another root', 'subscription { me { id } }', invalid],
    ['conflicting aliases', '{ me { x: id x: username } }', invalid],
    ['type definition as operation', 'type Evil { id: ID }', invalid],
    ['schema extension', 'extend type Query { evil: String }', invalid],
  ];
  for (const [name, query, code] of docs) operation(c, name, query, undefined, code);
}

// 3. Deep, wide and aliased queries.
{
  const c = 'deep/wide/aliased';
  const parse = 'GRAPHQL_PARSE_FAILED';
  const invalid = 'GRAPHQL_VALIDATION_FAILED';
  const nestType = (levels: number) =>
    `{ __type(name: "Query") { ${'fields { type { '.repeat(levels)}name${' } }'.repeat(levels)} } }`;
  for (const levels of [5, 8, 20])
    operation(c, `__type nested ${levels * 2 + 1} levels`, nestType(levels), undefined, invalid);
  const fragChain = (n: number) =>
    Array.from({ length: n }, (_, i) => `fragment T${i} on __Type { name fields { type { ...T${i + 1} } } }`)
      .join(' ')
      .replace(`...T${n}`, 'name') + ' { __type(name: "Query") { ...T0 } }';
  operation(c, 'depth through a fragment chain', fragChain(6), undefined, invalid);
  // Each alias is 6 tokens: 200 of them exceed the token limit before any rule runs.
  for (const n of [16, 40, 200])
    operation(
      c,
      `${n} aliases`,
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { id }`).join(' ')} }`,
      undefined,
      n * 6 > 1000 ? parse : invalid,
    );
  operation(
    c,
    '16 aliases of __typename (allowed) plus 16 of me',
    `{ ${Array.from({ length: 16 }, (_, i) => `t${i}: __typename m${i}: me { id }`).join(' ')} }`,
    undefined,
    invalid,
  );
  for (const n of [11, 40])
    operation(c, `${n} directives`, `{ me { id ${'@include(if: true) '.repeat(n)} } }`, undefined, invalid);
  for (const n of [6, 12]) {
    operation(
      c,
      `${n} aliased full pages (cost)`,
      `{ ${Array.from({ length: n }, (_, i) => `p${i}: messages(last: 100) { edges { node { id text sender { id username avatarUrl } } } }`).join(' ')} }`,
      undefined,
      invalid,
    );
  }
  operation(
    c,
    'expensive page via fragments (cost)',
    `fragment M on Message { id text createdAt sender { id username avatarUrl online lastSeenAt } recipient { id username } } { ${Array.from({ length: 3 }, (_, i) => `p${i}: messages(last: 100) { edges { node { ...M } } }`).join(' ')} }`,
    undefined,
    invalid,
  );
  operation(c, '1001 fields (tokens)', `{ me { ${'id '.repeat(1001)} } }`, undefined, parse);
  operation(c, '3000 nested braces (tokens)', '{'.repeat(3000), undefined, parse);
  operation(
    c,
    '600 variable definitions (tokens)',
    `query(${Array.from({ length: 600 }, (_, i) => `$v${i}: Int`).join(' ')}) { me { id } }`,
    undefined,
    parse,
  );
  operation(
    c,
    '500 fragment spreads (tokens)',
    `fragment F on User { id } { me { ${'...F '.repeat(500)} } }`,
    undefined,
    parse,
  );
  operation(
    c,
    '1000 operations (over the document size limit)',
    Array.from({ length: 1000 }, (_, i) => `query Q${i} { me { id } }`).join(' '),
    undefined,
    'BAD_REQUEST',
  );
  operation(
    c,
    '300 operations (tokens)',
    Array.from({ length: 300 }, (_, i) => `query Q${i} { me { id } }`).join(' '),
    undefined,
    parse,
  );
  operation(
    c,
    'introspection with 16 aliases',
    `{ ${Array.from({ length: 16 }, (_, i) => `s${i}: __schema { queryType { name } }`).join(' ')} }`,
    undefined,
    invalid,
  );
}

// 4. Huge strings and lists.
{
  const c = 'huge strings and lists';
  const bad = 'BAD_USER_INPUT';
  for (const n of [2001, 5000, 30000])
    operation(c, `text of ${n} characters`, SEND, { input: { text: 'x'.repeat(n) } }, bad);
  operation(c, 'text of 2001 emoji', SEND, { input: { text: '😀'.repeat(2001) } }, bad);
  operation(
    c,
    'text of 2001 combining marks after trimming',
    SEND,
    { input: { text: ` ${'\u0301'.repeat(2001)} ` } },
    bad,
  );
  operation(c, 'text of whitespace only', SEND, { input: { text: ' \n\t '.repeat(500) } }, bad);
  operation(
    c,
    'text of control characters only',
    SEND,
    { input: { text: '\u0000\u0001\u0007\u001b\u007f\u0085'.repeat(100) } },
    bad,
  );
  operation(c, 'empty text', SEND, { input: { text: '' } }, bad);
  for (const n of [65, 1000])
    operation(c, `clientId of ${n} characters`, SEND, { input: { text: 'hi', clientId: 'k'.repeat(n) } }, bad);
  operation(c, 'empty clientId', SEND, { input: { text: 'hi', clientId: '' } }, bad);
  operation(c, 'clientId with a control character', SEND, { input: { text: 'hi', clientId: 'a\u0000b' } }, bad);
  operation(c, 'clientId with a newline', SEND, { input: { text: 'hi', clientId: 'a\nb' } }, bad);
  operation(
    c,
    'list of 2000 ids for an ID',
    MESSAGES,
    { with: Array.from({ length: 2000 }, () => 'ffffffffffffffffffffffff') },
    bad,
  );
  operation(
    c,
    'list of 10000 strings for text',
    SEND,
    { input: { text: Array.from({ length: 10000 }, () => 'x') } },
    bad,
  );
  operation(c, 'nested lists for first', MESSAGES, { first: [[[[[1]]]]] }, bad);
  operation(c, 'cursor of 10000 characters', MESSAGES, { after: 'A'.repeat(10000) }, bad);
  operation(c, 'first: 101', MESSAGES, { first: 101 }, bad);
  // Sizes given as variables are priced by the cost limit, which refuses them before the resolver.
  operation(c, 'last: 1000000', MESSAGES, { last: 1000000 }, 'GRAPHQL_VALIDATION_FAILED');
  operation(c, 'first: 2^31 (Int overflow)', MESSAGES, { first: 2 ** 31 }, bad);
  operation(c, 'first: -1', MESSAGES, { first: -1 }, bad);
  operation(c, 'first and last together', MESSAGES, { first: 1, last: 1 }, bad);
}

// 5. Wrong types.
{
  const c = 'wrong types';
  const bad = 'BAD_USER_INPUT';
  const wrong: Array<[string, string, Record<string, unknown>]> = [
    ['text is a number', SEND, { input: { text: 5 } }],
    ['text is a boolean', SEND, { input: { text: true } }],
    ['text is null', SEND, { input: { text: null } }],
    ['text is an object', SEND, { input: { text: { value: 'x' } } }],
    ['text is missing', SEND, { input: {} }],
    ['input is a string', SEND, { input: 'hello' }],
    ['input is null', SEND, { input: null }],
    ['input is missing', SEND, {}],
    ['input is a list', SEND, { input: [{ text: 'x' }] }],
    ['input has an unknown field', SEND, { input: { text: 'x', admin: true } }],
    ['to is a boolean', SEND_VARS, { text: 'x', to: true }],
    ['to is a number', SEND_VARS, { text: 'x', to: 12345 }],
    ['to is a float', SEND_VARS, { text: 'x', to: 1.5 }],
    ['to is an object', SEND_VARS, { text: 'x', to: { id: 'x' } }],
    ['clientId is a number', SEND_VARS, { text: 'x', clientId: 7 }],
    ['clientId is an object', SEND_VARS, { text: 'x', clientId: {} }],
    ['first is a string', MESSAGES, { first: '10' }],
    ['first is a float', MESSAGES, { first: 1.5 }],
    ['first is a boolean', MESSAGES, { first: true }],
    ['first is an object', MESSAGES, { first: {} }],
    ['last is NaN-like string', MESSAGES, { last: 'NaN' }],
    ['with is a boolean', MESSAGES, { with: false }],
    ['with is a float', MESSAGES, { with: 0.5 }],
    ['after is a number', MESSAGES, { after: 5 }],
    ['before is a boolean', MESSAGES, { before: true }],
  ];
  for (const [name, query, vars] of wrong) operation(c, name, query, vars, bad);
}

// 6. Operator-shaped values: as strings they are validated like any id or cursor; as
// objects they fail GraphQL coercion. Neither reaches a MongoDB filter.
{
  const c = 'operator-shaped input';
  const bad = 'BAD_USER_INPUT';
  const operators: Array<[string, unknown]> = [
    ['{"$gt":""}', { $gt: '' }],
    ['{"$ne":null}', { $ne: null }],
    ['{"$where":"sleep(100)"}', { $where: 'sleep(100)' }],
    ['{"$regex":".*"}', { $regex: '.*' }],
    ['{"$in":[]}', { $in: [] }],
    ['{"$exists":true}', { $exists: true }],
    ['{"$expr":{"$eq":[1,1]}}', { $expr: { $eq: [1, 1] } }],
    ['$gt', ['$gt']],
  ];
  for (const [text, object] of operators) {
    for (const [form, value] of [
      ['string', text],
      ['object', object],
    ] as const) {
      const tag = `${form} ${text}`;
      operation(
        c,
        `messages(with: ${tag})`,
        MESSAGES,
        { with: value },
        bad,
        form === 'string' ? ['http', 'ws'] : ['http'],
      );
      operation(c, `messages(after: ${tag})`, MESSAGES, { after: value }, bad, ['http']);
      operation(c, `messages(before: ${tag})`, MESSAGES, { before: value }, bad, ['http']);
      operation(
        c,
        `sendMessage(to: ${tag})`,
        SEND_VARS,
        { text: 'x', to: value },
        bad,
        form === 'string' ? ['http', 'ws'] : ['http'],
      );
      operation(c, `messageAdded(with: ${tag})`, ADDED, { with: value }, bad, ['ws']);
      operation(c, `messageAdded(after: ${tag})`, ADDED, { after: value }, bad, ['ws']);
    }
  }
}

// 7. Malformed and unknown ids and cursors.
{
  const c = 'ids and cursors';
  const bad = 'BAD_USER_INPUT';
  const ids: Array<[string, unknown]> = [
    ['short id', 'abc'],
    ['empty id', ''],
    ['blank id', '   '],
    ['unknown id', 'ffffffffffffffffffffffff'],
    ['uppercase hex id', 'FFFFFFFFFFFFFFFFFFFFFFFF'],
    ['23 hex digits', '0'.repeat(23)],
    ['25 hex digits', '0'.repeat(25)],
    ['24 non-hex characters', 'z'.repeat(24)],
    ['own id', OWN_ID],
    ['path traversal', '../../etc/passwd'],
    ['conversation key', 'lobby'],
    ['Arabic-Indic digits', '٠'.repeat(24)],
    ['id with a NUL', 'ffffffffffff\u0000fffffffffff'],
    ['id of 10000 characters', 'f'.repeat(10000)],
  ];
  for (const [name, id] of ids) {
    operation(c, `messages(with: ${name})`, MESSAGES, { with: id }, bad, ['http', 'ws']);
    operation(c, `sendMessage(to: ${name})`, SEND_VARS, { text: 'x', to: id }, bad, ['http']);
    operation(c, `messageAdded(with: ${name})`, ADDED, { with: id }, bad, ['ws']);
  }
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const cursors: Array<[string, string]> = [
    ['empty cursor', ''],
    ['single character', 'x'],
    ['padded base64', `${b64('m1')}=`],
    ['standard base64 alphabet', Buffer.from('m1>?').toString('base64')],
    ['negative sequence', b64('m-1')],
    ['exponent sequence', b64('m1e3')],
    ['13-digit sequence', b64('m1234567890123')],
    ['wrong prefix', b64('n1')],
    ['leading zeros', b64('m0001')],
    ['percent-encoded', '%6D%31'],
    ['25 characters', 'A'.repeat(25)],
    ['message id of another conversation', `dm:${'a'.repeat(24)}:${'b'.repeat(24)}:000000000001`],
    ['message id with sequence 0', 'lobby:000000000000'],
  ];
  for (const [name, cursor] of cursors) {
    operation(c, `messages(after: ${name})`, MESSAGES, { after: cursor }, bad, ['http']);
    operation(c, `messages(before: ${name})`, MESSAGES, { before: cursor }, bad, ['http']);
    operation(c, `messageAdded(after: ${name})`, ADDED, { after: cursor }, bad, ['ws']);
  }
}

// 8. Invalid graphql-ws frames.
{
  const c = 'invalid graphql-ws frames';
  const BadRequest = 4400;
  const sub = (id: unknown, payload: unknown) => JSON.stringify({ id, type: 'subscribe', payload });
  frames(c, 'not JSON', { send: ['hello'], close: BadRequest });
  frames(c, 'empty text frame', { send: [''], close: BadRequest });
  frames(c, 'JSON null', { send: ['null'], close: BadRequest });
  frames(c, 'JSON array', { send: ['[]'], close: BadRequest });
  frames(c, 'object without type', { send: ['{}'], close: BadRequest });
  frames(c, 'unknown type', { send: ['{"type":"hack"}'], close: BadRequest });
  frames(c, 'numeric type', { send: ['{"type":5}'], close: BadRequest });
  frames(c, 'operator-shaped type', { send: ['{"type":{"$ne":null}}'], close: BadRequest });
  frames(c, 'connection_init with a string payload', {
    send: ['{"type":"connection_init","payload":"x"}'],
    close: BadRequest,
  });
  frames(c, 'binary garbage', { send: [Buffer.from([0, 1, 2, 3, 255])], close: BadRequest });
  frames(c, 'subscribe before connection_init', { send: [sub('1', { query: ME })], close: 4401 });
  frames(c, 'second connection_init', { init: true, send: ['{"type":"connection_init"}'], close: 4429 });
  frames(c, 'subscribe without id', {
    init: true,
    send: [JSON.stringify({ type: 'subscribe', payload: { query: ME } })],
    close: BadRequest,
  });
  frames(c, 'subscribe with a numeric id', { init: true, send: [sub(1, { query: ME })], close: BadRequest });
  frames(c, 'subscribe without payload', {
    init: true,
    send: [JSON.stringify({ id: '1', type: 'subscribe' })],
    close: BadRequest,
  });
  frames(c, 'subscribe with a numeric query', { init: true, send: [sub('1', { query: 5 })], close: BadRequest });
  frames(c, 'subscribe with an operator-shaped query', {
    init: true,
    send: [sub('1', { query: { $gt: '' } })],
    close: BadRequest,
  });
  frames(c, 'subscribe with string variables', {
    init: true,
    send: [sub('1', { query: ME, variables: 'x' })],
    close: BadRequest,
  });
  // A server-to-client message type from the client is the client's protocol error: 4400
  // (graphql-ws alone threw on it, logged a stack and closed with 4500; see realtime/frame-guard.ts).
  frames(c, 'next frame from the client', {
    init: true,
    send: [JSON.stringify({ id: '1', type: 'next', payload: { data: {} } })],
    close: BadRequest,
  });
  frames(c, 'error frame from the client', {
    init: true,
    send: [JSON.stringify({ id: '1', type: 'error', payload: [{ message: 'x' }] })],
    close: BadRequest,
  });
  frames(c, 'error frame with an empty error list', {
    init: true,
    send: [JSON.stringify({ id: '1', type: 'error', payload: [] })],
    close: BadRequest,
  });
  frames(c, 'connection_ack from the client', {
    init: true,
    send: ['{"type":"connection_ack"}'],
    close: BadRequest,
  });
  frames(c, 'duplicate subscription id', {
    init: true,
    send: [sub('dup', { query: ADDED }), sub('dup', { query: ADDED })],
    close: 4409,
  });
  frames(c, 'no sub-protocol', { send: [], close: 4406, protocol: null });
  frames(c, 'no connection_init within the timeout', { send: [], close: 4408, timeoutMs: 6000 });
  frames(c, 'invalid query in a valid frame', {
    init: true,
    send: [sub('1', { query: '{' })],
    errorCode: 'GRAPHQL_PARSE_FAILED',
  });
  frames(c, 'operator-shaped variables in a valid frame', {
    init: true,
    send: [sub('1', { query: MESSAGES, variables: { with: { $gt: '' } } })],
    errorCode: 'BAD_USER_INPUT',
  });
  frames(c, 'subscription id of 10000 characters with an invalid query', {
    init: true,
    send: [sub('i'.repeat(10000), { query: '{ nope }' })],
    errorCode: 'GRAPHQL_VALIDATION_FAILED',
  });
}

// 9. Oversized frames.
{
  const c = 'oversized frames';
  const TooBig = 1009;
  const big = (n: number) =>
    JSON.stringify({ id: '1', type: 'subscribe', payload: { query: ME, variables: { pad: 'x'.repeat(n) } } });
  frames(c, '65 KiB subscribe frame', { init: true, send: [big(65 * 1024)], close: TooBig });
  frames(c, '1 MiB subscribe frame', { init: true, send: [big(1024 * 1024)], close: TooBig });
  frames(c, '100 KiB binary frame', { init: true, send: [Buffer.alloc(100 * 1024, 0x61)], close: TooBig });
  frames(c, '65 KiB frame before connection_init', { send: ['x'.repeat(65 * 1024)], close: TooBig });
  frames(c, '65 KiB connection_init payload', {
    send: [JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(65 * 1024) } })],
    close: TooBig,
  });
  frames(c, 'text of 70000 characters in a frame', {
    init: true,
    send: [
      () =>
        JSON.stringify({
          id: '1',
          type: 'subscribe',
          payload: { query: SEND, variables: { input: { text: 'y'.repeat(70000) } } },
        }),
    ],
    close: TooBig,
  });
}

// 10. A foreign Origin, with the victim's cookie.
{
  const c = 'foreign Origin';
  const origins = [
    'https://evil.example',
    'http://evil.example:4000',
    'null',
    'https://app.example.evil.example',
    'http://localhost.evil.example',
    'http://127.0.0.1.evil.example',
    'https://app.example:8443',
    'http://app.example',
    'file://',
    'javascript:alert(1)',
    'https://user:pass@app.example',
    'https://app.example/path',
    'https://evil.example, https://app.example',
  ];
  for (const origin of origins) {
    refusedUpgrade(c, `Origin ${origin}`, () => ({ cookie: browser.cookie!, origin }), 403);
    httpBody(c, `Origin ${origin}`, JSON.stringify({ query: ME }), { status: 403, code: 'FORBIDDEN' }, { origin });
  }
}

// 11. A burst of connections (server with tight limits: 10 upgrades per address per minute).
{
  const c = 'burst of connections';
  add({
    category: c,
    name: 'WS 25 concurrent upgrades: 10 open, 15 get 429 with Retry-After',
    limits: true,
    run: async () => {
      const results = await Promise.all(
        Array.from({ length: 25 }, () => upgrade(limited.wsUrl, { cookie: limitedBrowser.cookie! })),
      );
      const statuses = results.map((r) => r.status).sort();
      results.forEach((r) => r.ws?.close());
      const opened = statuses.filter((s) => s === 101).length;
      const refused = results.filter((r) => r.status === 429 && Number(r.headers['retry-after']) > 0).length;
      if (opened !== 10 || refused !== 15)
        throw new Error(`expected 10 open and 15 refused, got ${JSON.stringify(statuses)}`);
    },
  });
  for (let i = 0; i < 5; i++) {
    refusedUpgrade(c, `after the burst, attempt ${i + 1} is still refused`, () => ({}), 429, true);
  }
}

// ---------------------------------------------------------------------------------------

beforeAll(async () => {
  [server, limited] = await Promise.all([
    // The cost cases are sized against a 20000 limit (the default is higher since the web
    // client's page grew with reactions and reply previews).
    startServer({ env: { ALLOWED_ORIGINS: 'https://app.example', GRAPHQL_MAX_COST: '20000' } }),
    startServer({ env: { RATE_LIMIT_WS_CONNECTIONS_IP: '10/60s' } }),
  ]);
  [db, limitedDb] = await Promise.all([openDb(server.mongodbUri), openDb(limited.mongodbUri)]);
  browser = new TestClient(server);
  me = await browser.me();
  limitedBrowser = new TestClient(limited);
  await limitedBrowser.me();
  other = await new TestClient(server).me();
  // A message in the lobby, so pages and replays have something to read.
  await browser.data('mutation { sendMessage(input: { text: "seed" }) { id } }');
  gqlWs = browser.ws();
  healthWs = browser.ws();
  await Promise.all([gqlWs.connected(), healthWs.connected()]);
  baseline = await countDocuments(db.db);
  limitedBaseline = await countDocuments(limitedDb.db);
}, 60000);

afterAll(async () => {
  console.log(
    `hostile-input suite: ${tally.ran} cases ran, ${tally.passed} passed\n` +
      [...tally.byCategory].map(([k, v]) => `  ${k}: ${v}`).join('\n'),
  );
  await Promise.all([gqlWs?.close(), healthWs?.close()]);
  await Promise.all([db?.close(), limitedDb?.close()]);
  await Promise.all([server?.close(), limited?.close()]);
});

test('the suite has at least 300 generated cases', () => {
  expect(cases.length).toBeGreaterThanOrEqual(300);
});

const categories = [...new Set(cases.map((c) => c.category))];
describe.each(categories)('%s', (category) => {
  test.each(cases.filter((c) => c.category === category).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    tally.ran++;
    tally.byCategory.set(category, (tally.byCategory.get(category) ?? 0) + 1);
    await c.run();
    // The next normal request is answered, as the same user.
    const normal = await (c.limits ? limitedBrowser : browser).me();
    expect(normal.id).toMatch(USER_ID);
    if (!c.limits) expect(normal.id).toBe(me.id);
    if (c.ws && !c.limits) expect((await healthWs.query<{ me: { id: string } }>(ME)).data?.me.id).toBe(me.id);
    // Nothing was added or removed.
    expect(await countDocuments((c.limits ? limitedDb : db).db)).toEqual(c.limits ? limitedBaseline : baseline);
    tally.passed++;
  });
});
