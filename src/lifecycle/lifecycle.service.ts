/**
 * Edits, deletions and reactions of stored messages, each recorded in the conversation's
 * update sequence and published to its `messageUpdated` subscribers.
 *
 * FerretDB 1.x applies an update as read-modify-write without isolation, so two concurrent
 * updates of one message (two instances, or a reaction racing an edit) can lose one. Changes
 * of one message are queued within this instance, and every write is checked by reading the
 * message back and written again if another writer overwrote it (see `settle`). Reaction
 * counts are recounted from the reaction claims (one document per user and emoji, created
 * by insert) until a recount matches what is stored, so the last writer always writes the
 * true counts: concurrent reactions on several instances end exact.
 */
import emojiRegex from 'emoji-regex';
import { BadUserInputError, ForbiddenError } from '../errors';
import { LOBBY, parseMessageId, roomOfKey } from '../messages/conversation';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc, MessageModel } from '../messages/message.model';
import { MAX_TEXT_LENGTH, type RoomAccess } from '../messages/message.service';
import { cleanUserText } from '../text/text';
import type { MessageStore } from '../messages/message.store';
import type { PubSub } from '../realtime/pubsub';
import type { UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import { KeyedQueue } from '../util/keyed-queue';
import { GHOST_USER } from './ghost';
import { MESSAGE_CHANGED_TOPIC, updateTopic, type UpdatePayload } from './lifecycle.events';
import type { ReactionDoc, ReactionModel } from './lifecycle.model';
import type { UpdateLog } from './update-log';

export const MAX_DISTINCT_REACTIONS = 20;

/** Who acts on a message: its sender may edit and delete; a moderator may delete anyone's. */
export interface Actor {
  id: string;
  role: 'user' | 'moderator';
}

export interface LifecycleOptions {
  editWindowSeconds: number;
  /**
   * The rooms domain's rules (its RoomService): a room message may be edited, deleted, reacted
   * to only by the room's members. Without it, room messages are refused as unknown.
   */
  rooms?: Pick<RoomAccess, 'check'>;
}

export const reactionId = (messageId: string, userId: string, emoji: string) => `${messageId}|${userId}|${emoji}`;

const EMOJI = emojiRegex();
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** One emoji, one grapheme cluster; else BAD_USER_INPUT. */
export function checkEmoji(emoji: unknown): string {
  const ok =
    typeof emoji === 'string' &&
    emoji.length > 0 &&
    emoji.length <= 64 &&
    [...graphemes.segment(emoji)].length === 1 &&
    [...emoji.matchAll(EMOJI)].some((m) => m[0] === emoji);
  if (!ok) throw new BadUserInputError('emoji must be a single emoji', 'emoji');
  return emoji;
}

type Fields = Partial<Omit<MessageDoc, '_id'>>;

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) {
    return a != null && b != null && new Date(a as Date).getTime() === new Date(b as Date).getTime();
  }
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export class LifecycleService {
  private readonly queue = new KeyedQueue();
  private readonly pendingRecounts = new Map<string, Promise<UpdatePayload>>();
  private stopListening?: () => void;

  constructor(
    private readonly store: MessageStore,
    private readonly messages: MessageModel,
    private readonly reactions: ReactionModel,
    private readonly log: UpdateLog,
    private readonly users: Pick<UserService, 'get'>,
    private readonly pubsub: PubSub,
    private readonly expiry: MessageExpiry,
    private readonly options: LifecycleOptions,
  ) {}

  /** Keeps this instance's recent-message cache in step with changes made on any instance. */
  async start(): Promise<void> {
    this.stopListening = await this.pubsub.subscribe(MESSAGE_CHANGED_TOPIC, ({ message, n }) =>
      this.store.noteChanged(message, n),
    );
  }

  close(): void {
    this.stopListening?.();
  }

  /** The message as stored now (the recent-message cache may be a moment behind a change). */
  fresh(id: string): Promise<MessageDoc | null> {
    return this.messages.findOne({ _id: id }).lean<MessageDoc>().exec();
  }

  /**
   * The message `id` if `viewerId` can see it, else BAD_USER_INPUT (the same answer for a
   * malformed id, someone else's direct message, a message of a private room the viewer is not
   * in, and an expired one: nothing can be probed). A room message also needs the viewer to be
   * a member (`write` access): a public room's non-member gets FORBIDDEN ("join the room").
   */
  async visibleMessage(viewerId: string, id: unknown, field = 'id'): Promise<MessageDoc> {
    const parsed = typeof id === 'string' ? parseMessageId(id) : null;
    if (parsed && (await this.canSee(viewerId, parsed.conversation))) {
      const doc = await this.store.get(id as string);
      if (doc && this.expiry.isVisible(doc)) return doc;
    }
    throw new BadUserInputError(`${field} is not a known message`, field);
  }

  private async anyMessage(id: unknown): Promise<MessageDoc> {
    const doc = typeof id === 'string' && parseMessageId(id) ? await this.store.get(id) : null;
    if (!doc) throw new BadUserInputError('id is not a known message', 'id');
    return doc;
  }

  /**
   * Whether the viewer may act on the conversation's messages: the lobby is everyone's, a
   * direct conversation its two users', a room its members' (`write`, the default) or, to
   * read it, any public room's and a private room's members' (`read`). False for anything the
   * viewer may not know of (answered as an unknown message); FORBIDDEN for a `write` in a
   * public room they did not join.
   */
  async canSee(viewerId: string, conversation: string, access: 'read' | 'write' = 'write'): Promise<boolean> {
    if (conversation === LOBBY) return true;
    if (conversation.startsWith('dm:')) return conversation.slice(3).split(':').includes(viewerId);
    const roomId = roomOfKey(conversation);
    if (!roomId || !this.options.rooms) return false;
    try {
      await this.options.rooms.check(viewerId, roomId, access, 'id');
      return true;
    } catch (err) {
      // Unknown or private-without-membership: the same answer as for an unknown message.
      if (err instanceof BadUserInputError) return false;
      throw err;
    }
  }

  async edit(actor: Actor, id: string, text: unknown): Promise<UpdatePayload> {
    // The same rules as sending (text/text.ts).
    const cleaned = cleanUserText(text, { field: 'text', maxLength: MAX_TEXT_LENGTH });
    const doc = await this.visibleMessage(actor.id, id);
    return this.queue.run(doc._id, async () => {
      const current = (await this.fresh(doc._id)) ?? doc;
      if (current.sender !== actor.id) throw new ForbiddenError('Only the sender may edit a message');
      if (current.deletedAt) throw new ForbiddenError('A deleted message cannot be edited');
      const windowMs = this.options.editWindowSeconds * 1000;
      if (Date.now() - new Date(current.createdAt).getTime() > windowMs) {
        throw new ForbiddenError(`Messages can be edited for ${this.options.editWindowSeconds} seconds after sending`);
      }
      await this.settle(doc._id, { text: cleaned, editedAt: new Date() });
      // A reaction written concurrently on another instance may have read the message before
      // this edit; and this write may have put back counts it had already replaced.
      await this.recount(doc._id);
      return this.changed(doc);
    });
  }

  /**
   * Turns the message into a tombstone: the text is erased in the database (not hidden), and
   * its reactions and reply link go with it. `ghost`: also detach it from its sender
   * (deleteMyData). Deleting a tombstone again changes nothing.
   */
  async delete(actor: Actor, id: string, opts: { ghost?: boolean } = {}): Promise<UpdatePayload> {
    // A moderator may delete any message, and deleteMyData erases every message the user sent,
    // also in rooms they have left since.
    const doc =
      actor.role === 'moderator' || opts.ghost ? await this.anyMessage(id) : await this.visibleMessage(actor.id, id);
    if (doc.sender !== actor.id && actor.role !== 'moderator') {
      throw new ForbiddenError('Only the sender or a moderator may delete a message');
    }
    return this.queue.run(doc._id, async () => {
      const current = (await this.fresh(doc._id)) ?? doc;
      if (current.deletedAt && !opts.ghost) return this.payload(current);
      const fields: Fields = {
        text: '',
        deletedAt: current.deletedAt ?? new Date(),
        reactions: [],
        replyTo: null,
        clientId: null,
        ...(opts.ghost ? { sender: GHOST_USER.id } : {}),
      };
      await this.settle(doc._id, fields);
      await this.reactions.deleteMany({ message: doc._id });
      return this.changed(doc);
    });
  }

  /** Adds (`on`) or removes the viewer's reaction; repeating is a no-op (no update is recorded). */
  async react(viewer: UserRecord, id: string, emojiIn: unknown, on: boolean): Promise<UpdatePayload> {
    const emoji = checkEmoji(emojiIn);
    const doc = await this.visibleMessage(viewer.id, id);
    if (doc.deletedAt) throw new BadUserInputError('A deleted message cannot be reacted to', 'id');
    const claim = reactionId(doc._id, viewer.id, emoji);
    if (on) {
      const distinct = doc.reactions ?? [];
      if (!distinct.some((r) => r.emoji === emoji) && distinct.length >= MAX_DISTINCT_REACTIONS) {
        throw new BadUserInputError(`A message has at most ${MAX_DISTINCT_REACTIONS} distinct reactions`, 'emoji');
      }
      const reaction: ReactionDoc = { _id: claim, message: doc._id, user: viewer.id, emoji, at: new Date() };
      try {
        await this.reactions.collection.insertOne(reaction as never);
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        return this.payload(doc);
      }
    } else {
      const r = await this.reactions.deleteOne({ _id: claim });
      if (r.deletedCount === 0) return this.payload(doc);
    }
    return this.recountOnce(doc);
  }

  /**
   * Recounts and publishes once for all the reactions to one message that arrive while a
   * recount is waiting in the queue: under a burst (a hundred users reacting at once) the
   * claims are counted a few times, not once per reaction. A run counts every claim made
   * before it starts; a reaction arriving after that schedules the next run.
   */
  private recountOnce(doc: MessageDoc): Promise<UpdatePayload> {
    const waiting = this.pendingRecounts.get(doc._id);
    if (waiting) return waiting;
    const run = this.queue.run(doc._id, async () => {
      this.pendingRecounts.delete(doc._id);
      await this.recount(doc._id);
      return this.changed(doc);
    });
    this.pendingRecounts.set(doc._id, run);
    run.catch(() => {
      if (this.pendingRecounts.get(doc._id) === run) this.pendingRecounts.delete(doc._id);
    });
    return run;
  }

  /**
   * Writes the message's reaction counts from its claims, until a recount after the write
   * agrees: whichever instance writes last has counted every claim made before its check.
   */
  async recount(messageId: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const counts = await this.countClaims(messageId);
      const doc = await this.fresh(messageId);
      if (!doc || doc.deletedAt) return;
      if (!sameValue(doc.reactions ?? [], counts)) await this.settle(messageId, { reactions: counts });
      if (sameValue(await this.countClaims(messageId), counts)) return;
    }
  }

  /**
   * A change made outside this service (moderation: hidden by reports, shown again, its
   * report closed): recorded in the update sequence and published like an edit, so live
   * subscribers and `messageUpdated(after)` replays both carry it.
   */
  announce(id: string): Promise<UpdatePayload | null> {
    return this.queue.run(id, async () => {
      const doc = await this.fresh(id);
      return doc ? this.changed(doc) : null;
    });
  }

  /** After reactions were removed behind the service's back (deleteMyData): recount and tell subscribers. */
  async recountAndPublish(messageId: string): Promise<void> {
    const doc = await this.fresh(messageId);
    if (!doc || !this.expiry.isVisible(doc) || doc.deletedAt) return;
    await this.queue.run(messageId, async () => {
      await this.recount(messageId);
      await this.changed(doc);
    });
  }

  private async countClaims(messageId: string): Promise<Array<{ emoji: string; count: number }>> {
    const claims = await this.reactions
      .find({ message: messageId }, { emoji: 1, at: 1 })
      .lean<Array<Pick<ReactionDoc, 'emoji' | 'at'>>>()
      .exec();
    const byEmoji = new Map<string, { count: number; first: number }>();
    for (const c of claims) {
      const e = byEmoji.get(c.emoji) ?? { count: 0, first: Infinity };
      e.count++;
      e.first = Math.min(e.first, new Date(c.at).getTime());
      byEmoji.set(c.emoji, e);
    }
    return [...byEmoji.entries()]
      .sort((a, b) => a[1].first - b[1].first || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_DISTINCT_REACTIONS)
      .map(([emoji, { count }]) => ({ emoji, count }));
  }

  /** Which of `emojis` the viewer reacted with on `messageId` (one `_id` lookup per emoji). */
  async mine(viewerId: string, messageId: string, emojis: string[]): Promise<Set<string>> {
    const found = await Promise.all(
      emojis.map(async (e) =>
        (await this.reactions.exists({ _id: reactionId(messageId, viewerId, e) }).exec()) ? e : null,
      ),
    );
    return new Set(found.filter((e): e is string => e !== null));
  }

  /**
   * Sets fields of one message and reads it back; if a concurrent read-modify-write (FerretDB)
   * put older values back, writes again.
   */
  private async settle(id: string, fields: Fields): Promise<MessageDoc | null> {
    for (let attempt = 0; ; attempt++) {
      await this.messages.collection.updateOne({ _id: id } as never, { $set: fields });
      const doc = await this.fresh(id);
      if (!doc) return null;
      const entries = Object.entries(fields) as Array<[keyof MessageDoc, unknown]>;
      if (entries.every(([k, v]) => sameValue(doc[k], v)) || attempt >= 10) return doc;
    }
  }

  /** Records the change in the update sequence, then publishes the message as it is after it. */
  private async changed(doc: MessageDoc): Promise<UpdatePayload> {
    const n = await this.log.append(doc.conversation, doc._id);
    // Read after the number is claimed: the state published for n includes every change
    // numbered before it, so the last event a subscriber gets is the latest state.
    const current = (await this.fresh(doc._id)) ?? doc;
    this.store.noteChanged(current, n);
    this.pubsub.publish(MESSAGE_CHANGED_TOPIC, { message: current, n }).catch(() => undefined);
    const payload = { ...(await this.payload(current)), n };
    this.pubsub.publish(updateTopic(doc.conversation), payload).catch(() => {
      // Subscribers fill gaps from the update log, so a lost publication only delays.
    });
    return payload;
  }

  async payload(message: MessageDoc): Promise<UpdatePayload> {
    const [sender, recipient] = await Promise.all([
      message.sender === GHOST_USER.id ? GHOST_USER : this.users.get(message.sender),
      message.recipient ? this.users.get(message.recipient) : null,
    ]);
    return { conversation: message.conversation, n: 0, message, sender: sender ?? GHOST_USER, recipient };
  }

  drain(timeoutMs: number): Promise<void> {
    return this.queue.drain(timeoutMs);
  }
}
