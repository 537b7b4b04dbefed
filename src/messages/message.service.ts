import { lru } from '../util/lru';
import { BadUserInputError } from '../errors';
import { cleanUserText, requireWellFormed } from '../text/text';
import type { PubSub } from '../realtime/pubsub';
import { parseUserId, type UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import { LOBBY, conversationKey, decodeCursor, parseMessageId, roomKey, roomOfKey } from './conversation';
import { messageTopic, type MessagePayload } from './message.events';
import type { MessageDoc } from './message.model';
import { SendBatcher, type Draft, type SendBatcherOptions } from './message.batcher';
import type { SendAdmission } from './message.policy';
import type { MessageStore } from './message.store';

export const MAX_TEXT_LENGTH = 2000;
export const MAX_CLIENT_ID_LENGTH = 64;
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

export interface SendInput {
  text: string;
  to?: string | null;
  room?: string | null;
  clientId?: string | null;
  /** A message of the same conversation that this one answers. */
  replyTo?: string | null;
}

/** Lifecycle fields of a new message (src/lifecycle): validates `replyTo`, sets the expiry. */
export interface SendLifecycle {
  fieldsFor(conversation: string, input: SendInput): Promise<{ replyTo?: string; ttlMs?: number }>;
  /** Whether a stored message is still there for readers (not expired, not purged). */
  isVisible(doc: MessageDoc): boolean;
  /** Before messages are inserted (the purge job records those that will expire); a failure fails the send. */
  beforeStore?(docs: readonly MessageDoc[]): Promise<void>;
  /** A new message was stored (the purge job learns that something will expire). */
  stored?(doc: MessageDoc): void;
}

export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface MessagePage {
  messages: MessageDoc[];
  hasPreviousPage: boolean;
  hasNextPage: boolean;
}

/**
 * Who may read and write a room's messages: the rooms domain owns the rules (app.ts passes
 * its RoomService). `check` throws BAD_USER_INPUT for a room the viewer may not know of
 * (unknown, or private without membership: indistinguishable) and FORBIDDEN for a write the
 * viewer may not make.
 */
export interface RoomAccess {
  check(viewerId: string, roomId: string, access: 'read' | 'write', field: string): Promise<void>;
  /** A message was stored in the room. */
  noteActivity(roomId: string): void;
}

/** Whether a direct message may be sent (ended stranger chats; blocking later): throws FORBIDDEN if not. */
export interface DirectPolicy {
  assertMaySend(senderId: string, recipientId: string): Promise<void>;
}

/** A conversation as the arguments name it: `with` a user, a `room`, or neither (the lobby). */
export interface ConversationTarget {
  with?: string | null;
  room?: string | null;
}

export interface ResolvedConversation {
  key: string;
  other: UserRecord | null;
  roomId: string | null;
}

export interface ReplayLimits {
  /** How many messages one `messageAdded(after:)` may replay (MAX_REPLAY_MESSAGES). */
  max: number;
  /** Counts `count` replayed messages against a WebSocket connection (its socket); throws RATE_LIMITED. */
  charge(connection: object, count: number): Promise<void>;
}

export class MessageService {
  /** Group commit of sends (message.batcher.ts). */
  private readonly batcher: SendBatcher;
  /** Sends with a clientId being stored by this instance, by idempotency key. */
  private readonly inFlight = new Map<string, Promise<MessageDoc>>();
  /** Recent idempotency keys sent through this instance: a retry is answered without a write. */
  private readonly recentKeys = lru<string, string>(20000);

  constructor(
    readonly store: MessageStore,
    private readonly users: UserService,
    private readonly pubsub: PubSub,
    private readonly conversations: {
      /**
       * Reads what recording that `a` and `b` talk directly needs, writing nothing; `write`
       * writes it (both inboxes hold the partner once it resolved). `assumedEmpty`: the
       * conversation's head was not read, it is taken to be empty.
       */
      preparePair(a: string, b: string): Promise<{ write(): Promise<void>; assumedEmpty: boolean }>;
      messageStored(message: MessageDoc): void;
    },
    private readonly policies: { rooms: RoomAccess; direct: DirectPolicy },
    private readonly replay: ReplayLimits = { max: Infinity, charge: () => Promise.resolve() },
    batcherOptions: SendBatcherOptions = {},
    private readonly lifecycle?: SendLifecycle,
  ) {
    this.batcher = new SendBatcher(store, {
      ...batcherOptions,
      ...(lifecycle?.beforeStore ? { beforeInsert: (docs) => lifecycle.beforeStore!(docs) } : {}),
    });
  }

  /**
   * Resolves a conversation named by `with` (a user) or `room`, at most one of them; neither
   * is the lobby. `write` also checks the viewer may send there (room membership, the direct
   * policy). `fields` names the arguments in errors (`to` for SendMessageInput).
   */
  async resolveConversation(
    viewer: { id: string },
    target: ConversationTarget,
    access: 'read' | 'write' = 'read',
    fields: { with: string; room: string } = { with: 'with', room: 'room' },
  ): Promise<ResolvedConversation> {
    const room = target.room ?? null;
    if (room !== null) {
      if (target.with != null) {
        throw new BadUserInputError(`Pass at most one of ${fields.with} and ${fields.room}`, fields.room);
      }
      await this.policies.rooms.check(viewer.id, room, access, fields.room);
      return { key: roomKey(room), other: null, roomId: room };
    }
    const { key, other } = await this.conversationWith(viewer, target.with, fields.with);
    if (other && access === 'write') await this.policies.direct.assertMaySend(viewer.id, other.id);
    return { key, other, roomId: null };
  }

  /** Resolves `with` to the conversation key, checking the other user exists and is not the viewer. */
  async conversationWith(
    viewer: { id: string },
    withUserId: string | null | undefined,
    field = 'with',
  ): Promise<{ key: string; other: UserRecord | null }> {
    if (withUserId === null || withUserId === undefined) return { key: LOBBY, other: null };
    parseUserId(withUserId, field);
    if (withUserId === viewer.id) throw new BadUserInputError(`${field} must be another user, not yourself`, field);
    const other = await this.users.get(withUserId);
    if (!other) throw new BadUserInputError(`${field} is not a known user`, field);
    return { key: conversationKey(viewer.id, withUserId), other };
  }

  /**
   * Stores a message, then publishes it; resolves only after the database acknowledged it.
   *
   * Sequence numbers are claimed by the insert itself: `_id` embeds the number, so two
   * writers (two instances) can never store the same one, and each insert takes the
   * newest existing number + 1, so numbers have no gaps. Concurrent sends are stored
   * together (group commit, see SendBatcher) and published in number order. (FerretDB 1.x
   * has no atomic `$inc` under concurrency: a counter document loses updates there, so
   * none is used.)
   */
  async send(
    sender: UserRecord,
    input: SendInput,
    admission: SendAdmission | Promise<SendAdmission> = {},
  ): Promise<MessagePayload> {
    // The admission (abuse control, blocking: moderation/) may still be running: its reads go
    // with ours below. It was asked first, so its refusal is the answer whatever else failed.
    const admitted = Promise.resolve(admission);
    admitted.catch(() => undefined);
    try {
      return await this.storeAdmitted(sender, input, admitted);
    } catch (err) {
      await admitted;
      throw err;
    }
  }

  /** send, once the admission is under way: nothing is written before it passed. */
  private async storeAdmitted(
    sender: UserRecord,
    input: SendInput,
    admitted: Promise<SendAdmission>,
  ): Promise<MessagePayload> {
    const text = cleanUserText(input.text, { field: 'text', maxLength: MAX_TEXT_LENGTH });
    let clientId: string | null = null;
    if (input.clientId !== null && input.clientId !== undefined) {
      clientId = input.clientId;
      requireWellFormed(clientId, 'clientId');
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      if (clientId.length < 1 || clientId.length > MAX_CLIENT_ID_LENGTH || /[\u0000-\u001F\u007F]/.test(clientId)) {
        throw new BadUserInputError(`clientId must be 1..${MAX_CLIENT_ID_LENGTH} printable characters`, 'clientId');
      }
    }
    // A room's write access here; a direct conversation's policy (a read) below, with the rest.
    const fieldNames = { with: 'to', room: 'room' };
    const { key: conversation, other } = await this.resolveConversation(
      sender,
      { with: input.to, room: input.room },
      input.room != null ? 'write' : 'read',
      fieldNames,
    );
    const dedupeKey = clientId ? `${sender.id}:${clientId}` : undefined;

    // Everything read before the first write, at once: the admission, the direct policy, the
    // lifecycle fields (replyTo checked; the expiry from the conversation's TTL and retention)
    // and what putting the conversation in both inboxes needs. A new partner's first message
    // thus waits for one round of reads instead of four in a row. Settled, then judged in the
    // order the checks used to run, so the same request fails with the same error.
    const [admission, allowed, fields, registration] = await Promise.allSettled([
      admitted,
      other ? this.policies.direct.assertMaySend(sender.id, other.id) : undefined,
      this.lifecycle
        ? this.lifecycle.fieldsFor(conversation, input)
        : Promise.resolve<{ replyTo?: string; ttlMs?: number }>({}),
      other ? this.conversations.preparePair(sender.id, other.id) : undefined,
    ]);
    if (admission.status === 'rejected') throw admission.reason;
    if (allowed.status === 'rejected') throw allowed.reason;

    if (dedupeKey) {
      const existing = await this.findByDedupeKey(dedupeKey, false);
      if (existing) return this.retried(existing, conversation, sender, other);
      // A concurrent retry with the same clientId through this instance: one store, one answer.
      const inFlight = this.inFlight.get(dedupeKey);
      if (inFlight) return this.retried(await inFlight, conversation, sender, other);
    }
    if (fields.status === 'rejected') throw fields.reason;
    if (registration.status === 'rejected') throw registration.reason;
    const lifecycle = fields.value;

    // The conversation in both inboxes before its first message is stored. Abuse control
    // (moderation/): a shadow-banned sender's message is stored for them alone, so it must
    // not show up in the other user's inbox or unread count either.
    const shadow = admission.value.shadow === true;
    if (registration.value && !shadow) await registration.value.write();

    const draft: Draft = {
      conversation,
      text,
      sender: sender.id,
      recipient: other?.id ?? null,
      clientId,
      ...(dedupeKey ? { dedupeKey } : {}),
      ...(lifecycle.replyTo ? { replyTo: lifecycle.replyTo } : {}),
      ...(lifecycle.ttlMs ? { ttlMs: lifecycle.ttlMs } : {}),
      ...(shadow ? { shadow: true } : {}),
      ...(registration.value?.assumedEmpty ? { assumedEmpty: true } : {}),
    };
    const submitted = this.batcher.submit(draft);
    if (dedupeKey) {
      const doc = submitted.then((r) => r.doc);
      this.inFlight.set(dedupeKey, doc);
      void doc
        .catch(() => undefined)
        .finally(() => {
          if (this.inFlight.get(dedupeKey) === doc) this.inFlight.delete(dedupeKey);
        });
    }
    const { doc, fresh } = await submitted;
    if (!fresh) return this.retried(doc, conversation, sender, other);
    if (dedupeKey) this.recentKeys.set(dedupeKey, doc._id);
    this.lifecycle?.stored?.(doc);
    const payload = this.payload(doc, sender, other);
    this.pubsub.publish(messageTopic(conversation), payload).catch(() => {
      // Subscribers fill gaps from the database (see MessageChannel), so a lost
      // publication delays a delivery; it does not lose it.
    });
    if (other && !shadow) this.conversations.messageStored(doc);
    const roomId = roomOfKey(conversation);
    if (roomId) this.policies.rooms.noteActivity(roomId);
    return payload;
  }

  /**
   * The answer to a retry (a clientId used before): the stored message, only if it was sent
   * to the same conversation. Otherwise a clientId would answer with any user's profile.
   */
  private retried(
    message: MessageDoc,
    conversation: string,
    sender: UserRecord,
    other: UserRecord | null,
  ): MessagePayload {
    if (message.conversation !== conversation) {
      throw new BadUserInputError('clientId was already used for a message to another conversation', 'clientId');
    }
    return this.payload(message, sender, other);
  }

  private payload(message: MessageDoc, sender: UserRecord, other: UserRecord | null): MessagePayload {
    const recipient = message.recipient ? (message.recipient === sender.id ? sender : other) : null;
    return { message, sender, recipient };
  }

  /**
   * The message stored under an idempotency key. `thorough` also asks the database by
   * key: on FerretDB that query scans the collection, so it is only used after a failed
   * insert has shown the key exists (a retry that reached another instance).
   */
  private async findByDedupeKey(key: string, thorough: boolean): Promise<MessageDoc | null> {
    const id = this.recentKeys.get(key);
    if (id) {
      const doc = await this.store.get(id);
      if (doc) return doc;
    }
    if (!thorough) return null;
    return this.store.findByDedupeKey(key);
  }

  /** Waits (at most `timeoutMs`) for sends in progress to finish: nothing acknowledged is cut off. */
  drain(timeoutMs: number): Promise<void> {
    return this.batcher.drain(timeoutMs);
  }

  /** A Relay page of the conversation, oldest first. */
  async page(conversation: string, args: PageArgs): Promise<MessagePage> {
    const { first, last } = args;
    for (const [name, v] of [
      ['first', first],
      ['last', last],
    ] as const) {
      if (v === null || v === undefined) continue;
      if (!Number.isInteger(v) || v < 0) throw new BadUserInputError(`${name} must be a non-negative integer`, name);
      if (v > MAX_PAGE_SIZE) throw new BadUserInputError(`${name} must be at most ${MAX_PAGE_SIZE}`, name);
    }
    if (first != null && last != null) {
      throw new BadUserInputError('Pass either first or last, not both', 'first');
    }
    const afterSeq = args.after != null ? decodeCursor(args.after, 'after') : 0;
    const beforeSeq = args.before != null ? decodeCursor(args.before, 'before') : Infinity;

    const head = await this.store.head(conversation);
    const from = afterSeq + 1;
    const to = Math.min(beforeSeq - 1, head);
    const messages = await this.visibleRange(conversation, from, to, first ?? last ?? DEFAULT_PAGE_SIZE, first == null);
    // Sequence numbers have no gaps, so whether anything lies beyond the page is arithmetic.
    // (Numbers below the head whose message expired are skipped; a page before them may be empty.)
    const start = messages[0]?.seq ?? (first != null ? from : to + 1);
    const end = messages[messages.length - 1]?.seq ?? start - 1;
    return {
      messages,
      hasPreviousPage: start > 1,
      hasNextPage: end < head,
    };
  }

  /**
   * Admits a replay from `afterSeq`, before the subscription starts: not further back than
   * the replay cap (older history is a `messages` page), and paid for from the connection's
   * replay budget, so reconnect loops cannot re-read a long conversation over and over.
   */
  async admitReplay(connection: object, conversation: string, afterSeq: number): Promise<void> {
    // A head read a moment old serves to measure the replay (a reconnect storm sends
    // thousands of these at once); only a cursor beyond it needs the current head.
    let head = await this.store.head(conversation, true);
    if (afterSeq > head) head = await this.store.head(conversation);
    if (afterSeq > head) throw new BadUserInputError('after is newer than the newest message', 'after');
    const count = head - afterSeq;
    if (count > this.replay.max) {
      throw new BadUserInputError(
        `after is more than ${this.replay.max} messages back: load the history with messages, then subscribe after its newest`,
        'after',
      );
    }
    if (count > 0) await this.replay.charge(connection, count);
  }

  /**
   * Up to `limit` messages of `from..to` that readers may see, oldest first (`newest`: the
   * newest `limit`). Expired and purged ones are skipped and the range read further, so a page
   * is full while visible messages remain in the range.
   */
  private async visibleRange(
    conversation: string,
    from: number,
    to: number,
    limit: number,
    newest: boolean,
  ): Promise<MessageDoc[]> {
    const out: MessageDoc[] = [];
    let [lo, hi] = [from, to];
    while (out.length < limit && lo <= hi) {
      const docs = await this.store.range(conversation, lo, hi, limit - out.length, newest);
      if (docs.length === 0) break;
      const visible = this.lifecycle ? docs.filter((d) => this.lifecycle!.isVisible(d)) : docs;
      if (newest) {
        out.unshift(...visible);
        hi = docs[0].seq - 1;
      } else {
        out.push(...visible);
        lo = docs[docs.length - 1].seq + 1;
      }
    }
    return out;
  }

  /** Resolves `after` (a cursor or a message id of this conversation) to a sequence number. */
  resolveAfter(conversation: string, after: string): number {
    const asId = parseMessageId(after);
    if (asId) {
      if (asId.conversation !== conversation) {
        throw new BadUserInputError('after is a message of another conversation', 'after');
      }
      return asId.seq;
    }
    return decodeCursor(after, 'after');
  }
}
