/**
 * Conversation keys, message ids and cursors (src/messages/conversation.ts): what a client
 * can send back as `after`/`before` is checked here without a server.
 */
import { GraphQLError } from 'graphql';
import {
  LOBBY,
  MAX_SEQ,
  conversationKey,
  decodeCursor,
  directKey,
  encodeCursor,
  messageId,
  parseMessageId,
} from '../../src/messages/conversation';
import { MessageService } from '../../src/messages/message.service';

/** The one place that knows MessageService's constructor (resolveAfter uses none of its dependencies). */
function makeService(): MessageService {
  return new MessageService({} as never, {} as never, {} as never, {} as never, {} as never);
}

const A = '65a1b2c3d4e5f60718293a4b';
const B = '65a1b2c3d4e5f60718293a4c';
const C = '0000000000000000000000ff';

/** The error `fn` throws, asserting it throws a GraphQL error. */
function thrown(fn: () => unknown): GraphQLError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GraphQLError);
    return err as GraphQLError;
  }
  throw new Error('expected an error');
}

const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64url');

describe('conversation keys', () => {
  test('a direct conversation has one key whichever participant asks', () => {
    expect(directKey(A, B)).toBe(`dm:${A}:${B}`);
    expect(directKey(B, A)).toBe(`dm:${A}:${B}`);
    expect(conversationKey(A, B)).toBe(conversationKey(B, A));
  });

  test('without a partner the conversation is the lobby', () => {
    expect(conversationKey(A)).toBe(LOBBY);
    expect(conversationKey(A, null)).toBe(LOBBY);
    expect(conversationKey(A, '')).toBe(LOBBY);
  });

  test('different pairs get different keys', () => {
    const keys = new Set([directKey(A, B), directKey(A, C), directKey(B, C)]);
    expect(keys.size).toBe(3);
  });
});

describe('message ids', () => {
  test.each([1, 2, 9, 10, 99, 1000, 123456789, MAX_SEQ])(
    'seq %d round-trips in the lobby and a direct conversation',
    (seq) => {
      for (const conv of [LOBBY, directKey(A, B)]) {
        const id = messageId(conv, seq);
        expect(parseMessageId(id)).toEqual({ conversation: conv, seq });
      }
    },
  );

  test('ids sort by sequence number within a conversation', () => {
    const seqs = [1, 2, 9, 10, 11, 99, 100, 1000, 99999, 100000];
    const ids = seqs.map((s) => messageId(LOBBY, s));
    expect([...ids].sort()).toEqual(ids);
  });

  test('the conversation of an id is recovered, so an id of another conversation can be told apart', () => {
    const parsed = parseMessageId(messageId(directKey(B, C), 7));
    expect(parsed).toEqual({ conversation: directKey(B, C), seq: 7 });
    expect(parsed!.conversation).not.toBe(directKey(A, B));
  });

  test.each([
    ['empty', ''],
    ['sequence 0', `lobby:${'0'.repeat(12)}`],
    ['too few digits', 'lobby:00000000001'],
    ['too many digits', 'lobby:0000000000001'],
    ['negative', 'lobby:-00000000001'],
    ['fraction', 'lobby:0000000001.5'],
    ['exponent', 'lobby:00000001e+10'],
    ['unknown conversation', 'room:000000000001'],
    ['upper-case hex user id', `dm:${A.toUpperCase()}:${B}:000000000001`],
    ['short user id', `dm:${A.slice(1)}:${B}:000000000001`],
    ['one user only', `dm:${A}:000000000001`],
    ['trailing newline', 'lobby:000000000001\n'],
    ['leading space', ' lobby:000000000001'],
    ['unicode digits', 'lobby:00000000000١'],
    ['full-width digits', 'lobby:００００００００００01'],
    ['emoji', 'lobby:😀'],
    ['a cursor', encodeCursor(1)],
  ])('%s is not a message id', (_what, id) => {
    expect(parseMessageId(id)).toBeNull();
  });
});

describe('cursors', () => {
  test.each([0, 1, 7, 10, 99, 100, 2 ** 31, MAX_SEQ])('seq %d round-trips', (seq) => {
    const cursor = encodeCursor(seq);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, 'after')).toBe(seq);
  });

  test.each([
    ['empty', ''],
    ['padding', Buffer.from('m1').toString('base64')],
    ['standard base64 alphabet', '+/+/'],
    ['not base64 at all', 'not a cursor!'],
    ['a message id', messageId(LOBBY, 1)],
    ['negative', b64('m-1')],
    ['fraction', b64('m1.5')],
    ['exponent', b64('m1e3')],
    ['hex', b64('m0x10')],
    ['leading zero (not canonical)', b64('m01')],
    ['13 digits (beyond MAX_SEQ)', b64('m1000000000000')],
    ['huge', b64('m' + '9'.repeat(20))],
    ['no digits', b64('m')],
    ['wrong prefix', b64('n1')],
    ['trailing garbage', b64('m1x')],
    ['trailing newline', b64('m1\n')],
    ['unicode digits', Buffer.from('m١', 'utf8').toString('base64url')],
    ['NaN', b64('mNaN')],
    ['Infinity', b64('mInfinity')],
    ['too long', 'A'.repeat(25)],
    ['unicode', 'ü😀'],
    ['non-canonical trailing bits', encodeCursor(1).slice(0, -1) + 'R'],
  ])('%s is BAD_USER_INPUT naming the argument', (_what, cursor) => {
    const err = thrown(() => decodeCursor(cursor, 'before'));
    expect(err.extensions.code).toBe('BAD_USER_INPUT');
    expect(err.extensions.field).toBe('before');
    expect(err.message).toBe('before is not a valid cursor');
  });

  test.each<unknown>([undefined, null, 1, {}, ['m1']])('a non-string (%p) is BAD_USER_INPUT, not a crash', (value) => {
    const err = thrown(() => decodeCursor(value as string, 'after'));
    expect(err.extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('resolving `after` (a cursor or a message id)', () => {
  const conv = directKey(A, B);

  test('a message id of the conversation gives its sequence number', () => {
    expect(makeService().resolveAfter(conv, messageId(conv, 42))).toBe(42);
  });

  test('a cursor gives its sequence number', () => {
    expect(makeService().resolveAfter(conv, encodeCursor(42))).toBe(42);
    expect(makeService().resolveAfter(LOBBY, encodeCursor(0))).toBe(0);
  });

  test.each([
    ['the lobby', messageId(LOBBY, 3)],
    ['another pair', messageId(directKey(A, C), 3)],
    ['a pair sharing one user', messageId(directKey(B, C), 3)],
  ])('a message id of %s is BAD_USER_INPUT', (_what, id) => {
    const err = thrown(() => makeService().resolveAfter(conv, id));
    expect(err.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(err.message).toBe('after is a message of another conversation');
  });

  test('a forged id-like string is BAD_USER_INPUT', () => {
    const err = thrown(() => makeService().resolveAfter(LOBBY, 'lobby:000000000000'));
    expect(err.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
  });
});
