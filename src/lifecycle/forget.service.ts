/**
 * deleteMyData: erases what the contract lists, in an order that can be retried: first the
 * content (messages become tombstones detached from the user, reactions go and their counts
 * are recounted), then read markers and the user's conversation list, and last the sessions
 * and the user itself, so a failure half-way leaves a session that can ask again.
 *
 * Erased: the text (and clientId, reply link, reactions) of every message the user sent,
 * which stay as tombstones attributed to "Deleted user"; their reactions; their read markers;
 * their conversation list; what other domains keep keyed to them (UserDataEraser: room
 * memberships, reports filed, blocks made, the stranger queue, moderation's network record);
 * their sessions; the user. Messages of theirs that already expired
 * are reduced to the purge's position stub at once.
 */
import type { Connection } from 'mongoose';
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import type { MessageExpiry } from '../messages/message.expiry';
import type { MessageDoc, MessageModel } from '../messages/message.model';
import type { PubSub } from '../realtime/pubsub';
import { SESSION_REVOKED_TOPIC } from '../sessions/session.events';
import type { UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import { USER_DELETED_TOPIC } from './lifecycle.events';
import type { ReactionModel } from './lifecycle.model';
import type { LifecycleService } from './lifecycle.service';

/**
 * Another domain's part of deleteMyData: everything it keeps keyed to the user (room
 * memberships, reports filed, blocks made, the stranger queue...). app.ts hands them over.
 */
export interface UserDataEraser {
  readonly name: string;
  eraseUser(user: UserRecord): Promise<void>;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class ForgetService {
  private stop?: () => void;

  constructor(
    private readonly connection: Connection,
    private readonly messages: MessageModel,
    private readonly reactions: ReactionModel,
    private readonly lifecycle: LifecycleService,
    private readonly users: Pick<UserService, 'forget'>,
    private readonly pubsub: PubSub,
    private readonly expiry: MessageExpiry,
    private readonly logger: Logger,
    private readonly erasers: readonly UserDataEraser[] = [],
  ) {}

  /** Every instance drops its cached copy of an erased user. */
  async start(): Promise<void> {
    this.stop = await this.pubsub.subscribe(USER_DELETED_TOPIC, ({ userId }) => this.users.forget(userId));
  }

  close(): void {
    this.stop?.();
  }

  async forget(user: UserRecord, currentSessionId: string): Promise<void> {
    const userId = user.id;
    await this.eraseMessages(userId);
    await this.eraseReactions(userId);
    const prefix = { $regex: `^${escape(userId)}:` };
    await this.connection.collection('read_markers').deleteMany({ _id: prefix } as never);
    await this.connection.collection('inbox_entries').deleteMany({ owner: userId });
    await this.connection.collection('inbox_pairs').deleteMany({ _id: prefix } as never);
    for (const eraser of this.erasers) await eraser.eraseUser(user);

    const sessions = this.connection.collection<{ _id: string; userId?: string }>('sessions');
    const sessionIds = new Set(
      (await sessions.find({ userId }, { projection: { _id: 1 } }).toArray()).map((s) => s._id),
    );
    sessionIds.add(currentSessionId);
    await sessions.deleteMany({ _id: { $in: [...sessionIds] } });
    if (Types.ObjectId.isValid(userId) && /^[0-9a-f]{24}$/.test(userId)) {
      await this.connection.collection('users').deleteOne({ _id: new Types.ObjectId(userId) });
    }
    await this.connection.collection('users').deleteOne({ _id: userId } as never);
    this.users.forget(userId);
    await this.pubsub.publish(USER_DELETED_TOPIC, { userId }).catch(() => undefined);
    // Every instance closes this user's WebSockets (4001); the next request gets a new identity.
    for (const sessionId of sessionIds) {
      await this.pubsub.publish(SESSION_REVOKED_TOPIC, { sessionId }).catch(() => undefined);
    }
    this.logger.info({ userId, sessions: sessionIds.size }, 'user data erased');
  }

  private async eraseMessages(userId: string): Promise<void> {
    const docs = await this.messages.collection
      .find<MessageDoc>({ sender: userId }, { projection: { _id: 1, conversation: 1, seq: 1, counts: 1 } })
      .toArray();
    const full = await Promise.all(docs.map((d) => this.messages.findOne({ _id: d._id }).lean<MessageDoc>().exec()));
    for (const doc of full) {
      if (!doc) continue;
      if (this.expiry.isVisible(doc)) {
        await this.lifecycle.delete({ id: userId, role: 'user' }, doc._id, { ghost: true });
      } else {
        await this.messages.collection.replaceOne({ _id: doc._id } as never, {
          conversation: doc.conversation,
          seq: doc.seq,
          ...(doc.counts ? { counts: doc.counts } : {}),
          expiresAt: doc.expiresAt ?? doc.createdAt,
          purgedAt: new Date(),
        });
      }
    }
  }

  private async eraseReactions(userId: string): Promise<void> {
    const mine = await this.reactions.find({ user: userId }, { message: 1 }).lean<Array<{ message: string }>>().exec();
    await this.reactions.deleteMany({ user: userId });
    for (const messageId of new Set(mine.map((r) => r.message))) {
      await this.lifecycle.recountAndPublish(messageId);
    }
  }
}
