/**
 * Conversation keys, message ids and cursors.
 *
 * A conversation is `lobby`, `dm:<smaller user id>:<larger user id>` or `room:<room id>`. Each message gets the
 * next sequence number of its conversation, and its `_id` is `<conversation>:<seq>` with the
 * number zero-padded, so ids sort by sequence within a conversation and a page or a replay
 * is a set of `_id` lookups (see MessageStore). Cursors encode only the sequence number.
 */
import { BadUserInputError } from '../errors';

export const LOBBY = 'lobby';
export const SEQ_WIDTH = 12;
export const MAX_SEQ = 10 ** SEQ_WIDTH - 1;

export function directKey(a: string, b: string): string {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** Room ids are 16 random URL-safe characters (see rooms/room.service.ts). */
export const ROOM_ID = /^[A-Za-z0-9_-]{16}$/;

export function roomKey(roomId: string): string {
  return `room:${roomId}`;
}

/** The room of a conversation key; null outside rooms. */
export function roomOfKey(conversation: string): string | null {
  return conversation.startsWith('room:') ? conversation.slice(5) : null;
}

/** The conversation between the viewer and `withUserId`, or the lobby. */
export function conversationKey(viewerId: string, withUserId?: string | null): string {
  return withUserId ? directKey(viewerId, withUserId) : LOBBY;
}

export function messageId(conversation: string, seq: number): string {
  return `${conversation}:${String(seq).padStart(SEQ_WIDTH, '0')}`;
}

const MESSAGE_ID = /^(lobby|dm:[0-9a-f]{24}:[0-9a-f]{24}|room:[A-Za-z0-9_-]{16}):(\d{12})$/;

/** Splits a message id; null when it is not one. */
export function parseMessageId(id: string): { conversation: string; seq: number } | null {
  const m = MESSAGE_ID.exec(id);
  if (!m) return null;
  const seq = Number(m[2]);
  return seq >= 1 ? { conversation: m[1], seq } : null;
}

export function encodeCursor(seq: number): string {
  return Buffer.from(`m${seq}`).toString('base64url');
}

/** Decodes a cursor from `messages`; anything else is BAD_USER_INPUT. */
export function decodeCursor(cursor: string, field: string): number {
  if (typeof cursor !== 'string' || cursor.length > 24 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw new BadUserInputError(`${field} is not a valid cursor`, field);
  }
  const m = /^m(\d{1,12})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  const seq = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ || encodeCursor(seq) !== cursor) {
    throw new BadUserInputError(`${field} is not a valid cursor`, field);
  }
  return seq;
}
