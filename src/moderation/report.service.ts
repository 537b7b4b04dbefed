/**
 * Reports and the moderators' queue. A user reports a message they can see, once; at
 * REPORT_HIDE_THRESHOLD distinct reporters the message is hidden from everyone but its sender
 * until a moderator clears the report or deletes the message.
 *
 * Counting distinct reporters without atomic increments (FerretDB 1.x): a reporter first
 * claims `<message>|<reporter>` by insert (a second report fails there), then the next free
 * slot `<message>#<n>` by insert, like message sequence numbers; the slots are gap-free, so
 * the reporter who claims slot n knows they are the n-th, and exactly one of them crosses the
 * threshold.
 */
import { seqId, type SeqKeys, type StorageStrategy } from '../db/strategy';
import { BadUserInputError } from '../errors';
import { parseMessageId } from '../messages/conversation';
import type { MessageDoc } from '../messages/message.model';
import type { MessagePolicy } from '../messages/message.policy';
import type { MessageStore } from '../messages/message.store';
import type { PubSub } from '../realtime/pubsub';
import { MESSAGE_CHANGED_TOPIC } from './moderation.events';
import type { AuditLog } from './audit';
import type { ModerationModels, ReportCaseDoc, ReportSlotDoc } from './moderation.model';

export const REPORT_REASONS = ['SPAM', 'HARASSMENT', 'HATE', 'SEXUAL', 'VIOLENCE', 'OTHER'] as const;
export type ReportReasonValue = (typeof REPORT_REASONS)[number];

export const MAX_REPORT_PAGE = 50;
/** Slots read per case to list its reasons (the count is exact regardless). */
const REASON_SAMPLE = 50;

const slotKeys = (message: string): SeqKeys => ({ prefix: `${message}#`, width: 6 });
const slotId = (message: string, n: number) => seqId(slotKeys(message), n);
const isDuplicate = (err: unknown) => (err as { code?: number })?.code === 11000;

export interface ReportView {
  id: string;
  message: MessageDoc;
  reasons: ReportReasonValue[];
  reporters: number;
  createdAt: Date;
}

export interface ReportOptions {
  hideThreshold: number;
  strategy: StorageStrategy;
  /** Told when a message was hidden or shown again (awaited): app.ts pushes it to messageUpdated. */
  onChanged?: (message: MessageDoc) => void | Promise<void>;
  /**
   * Whether the viewer may read the conversation's messages (the lobby, their own direct
   * conversations, the rooms they may read: LifecycleService.canSee with `read`).
   */
  canSee(viewerId: string, conversation: string): Promise<boolean>;
}

const cursorOf = (c: Pick<ReportCaseDoc, '_id' | 'createdAt'>) =>
  Buffer.from(`${c.createdAt.getTime()}|${c._id}`).toString('base64url');

function parseCursor(cursor: string): { at: Date; id: string } {
  const m = /^(\d+)\|(.+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new BadUserInputError('after is not a cursor of this list', 'after');
  return { at: new Date(Number(m[1])), id: m[2] };
}

export class ReportService {
  constructor(
    private readonly models: Pick<ModerationModels, 'ReportClaim' | 'ReportSlot' | 'ReportCase'>,
    private readonly store: Pick<MessageStore, 'get' | 'update' | 'refresh'>,
    private readonly policy: Pick<MessagePolicy, 'visible'>,
    private readonly audit: AuditLog,
    private readonly pubsub: PubSub,
    private readonly options: ReportOptions,
  ) {}

  private unsubscribe?: () => void;

  /** Keeps every instance's held copies of changed messages current. */
  async start(): Promise<void> {
    this.unsubscribe = await this.pubsub.subscribe(MESSAGE_CHANGED_TOPIC, ({ id }) => {
      void this.store.refresh(id).catch(() => undefined);
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** Writes a moderation change to a message; tells the other instances and the live hook. */
  private async change(
    id: string,
    update: { $set?: Partial<MessageDoc>; $unset?: Record<string, ''> },
    announce = true,
  ): Promise<MessageDoc | null> {
    const doc = await this.store.update(id, update);
    await this.pubsub.publish(MESSAGE_CHANGED_TOPIC, { id }).catch(() => undefined);
    if (doc && announce) await this.options.onChanged?.(doc);
    return doc;
  }

  /** A message the viewer can see (else the same BAD_USER_INPUT as for an unknown id). */
  private async visibleMessage(viewerId: string, id: string): Promise<MessageDoc> {
    const unknown = () => new BadUserInputError('id is not a message you can see', 'id');
    const parsed = typeof id === 'string' ? parseMessageId(id) : null;
    if (!parsed || !(await this.options.canSee(viewerId, parsed.conversation))) throw unknown();
    const doc = await this.store.get(id);
    if (!doc || doc.text === '' || (await this.policy.visible(viewerId, [doc])).length === 0) throw unknown();
    return doc;
  }

  async report(viewerId: string, id: string, reason: ReportReasonValue): Promise<boolean> {
    if (!REPORT_REASONS.includes(reason)) throw new BadUserInputError('reason is not a ReportReason', 'reason');
    const doc = await this.visibleMessage(viewerId, id);
    if (doc.sender === viewerId) throw new BadUserInputError('You cannot report your own message', 'id');
    try {
      await this.models.ReportClaim.collection.insertOne({ _id: `${id}|${viewerId}`, at: new Date() } as never);
    } catch (err) {
      if (isDuplicate(err)) throw new BadUserInputError('You already reported this message', 'id');
      throw err;
    }
    const existing = await this.models.ReportCase.findOne({ _id: id }).lean<ReportCaseDoc>().exec();
    const n = await this.claimSlot(id, viewerId, reason, existing?.reporters ?? 0);
    if (!existing) {
      await this.models.ReportCase.collection
        .insertOne({
          _id: id,
          conversation: doc.conversation,
          sender: doc.sender,
          createdAt: new Date(),
          status: 'open',
          reporters: n,
          decidedAt: null,
        } as never)
        .catch((err: unknown) => {
          if (!isDuplicate(err)) throw err;
        });
    } else if (existing.reporters < n) {
      // A hint for counting later; a lost update only costs a lookup or two then.
      await this.models.ReportCase.updateOne({ _id: id }, { $max: { reporters: n } }).exec();
    }
    const open = !existing || existing.status === 'open';
    if (open && n >= this.options.hideThreshold && !doc.hiddenAt) await this.setHidden(doc, true);
    return true;
  }

  private async claimSlot(id: string, reporter: string, reason: string, hint: number): Promise<number> {
    let n = (await this.slotHead(id, hint)) + 1;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.models.ReportSlot.collection.insertOne({
          _id: slotId(id, n),
          message: id,
          reporter,
          reason,
          at: new Date(),
        } as never);
        return n;
      } catch (err) {
        if (!isDuplicate(err) || attempt >= 50) throw err;
        n++;
      }
    }
  }

  private slotHead(id: string, hint: number): Promise<number> {
    return this.options.strategy.head(this.models.ReportSlot, slotKeys(id), Math.max(0, hint - 1));
  }

  private async setHidden(doc: MessageDoc, hidden: boolean): Promise<void> {
    await this.change(doc._id, hidden ? { $set: { hiddenAt: new Date() } } : { $unset: { hiddenAt: '' } });
  }

  /**
   * deleteMyData: the reports the user filed. Their claims go; each of their slots keeps its
   * place (slots are gap-free, so the count of distinct reporters stays derivable) but loses
   * who filed it and why, like a message tombstone. A message already hidden stays hidden
   * until a moderator decides: the reports of the others still count.
   */
  async eraseReporter(userId: string): Promise<number> {
    const slots = await this.models.ReportSlot.find({ reporter: userId }, { _id: 1, message: 1 })
      .lean<Array<Pick<ReportSlotDoc, '_id' | 'message'>>>()
      .exec();
    for (const slot of slots) {
      await this.models.ReportSlot.collection.replaceOne({ _id: slot._id } as never, {
        message: slot.message,
        reason: null,
        at: new Date(),
        erased: true,
      });
    }
    const escaped = userId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await this.models.ReportClaim.deleteMany({ _id: { $regex: `\\|${escaped}$` } }).exec();
    return slots.length;
  }

  /** The moderators' queue: open reports, newest first, one per message. */
  async page(first: number, after?: string | null): Promise<{ reports: ReportView[]; hasNextPage: boolean }> {
    if (!Number.isInteger(first) || first < 0 || first > MAX_REPORT_PAGE) {
      throw new BadUserInputError(`first must be 0..${MAX_REPORT_PAGE}`, 'first');
    }
    const filter: Record<string, unknown> = { status: 'open' };
    if (after != null) {
      const c = parseCursor(after);
      filter.$or = [{ createdAt: { $lt: c.at } }, { createdAt: c.at, _id: { $lt: c.id } }];
    }
    const cases = await this.models.ReportCase.find(filter)
      .sort({ createdAt: -1, _id: -1 })
      .limit(first + 1)
      .lean<ReportCaseDoc[]>()
      .exec();
    const reports = await Promise.all(cases.slice(0, first).map((c) => this.view(c)));
    return { reports: reports.filter((r): r is ReportView => r !== null), hasNextPage: cases.length > first };
  }

  reportCursor(r: ReportView): string {
    return cursorOf({ _id: r.id, createdAt: r.createdAt });
  }

  private async view(c: ReportCaseDoc): Promise<ReportView | null> {
    const message = await this.store.get(c._id);
    if (!message) return null;
    const reporters = await this.slotHead(c._id, c.reporters);
    const slots = await this.options.strategy.range<ReportSlotDoc>(
      this.models.ReportSlot,
      slotKeys(c._id),
      1,
      reporters,
      REASON_SAMPLE,
    );
    const reasons = REPORT_REASONS.filter((r) => slots.some((s) => s.reason === r));
    return { id: c._id, message, reasons, reporters, createdAt: c.createdAt };
  }

  /** A moderator found the message acceptable: it is shown again and leaves the queue. */
  async clear(by: string, id: string): Promise<boolean> {
    const c = await this.models.ReportCase.findOne({ _id: id }).lean<ReportCaseDoc>().exec();
    if (!c) throw new BadUserInputError('id is not a reported message', 'id');
    await this.models.ReportCase.updateOne({ _id: id }, { $set: { status: 'cleared', decidedAt: new Date() } }).exec();
    const doc = await this.store.get(id);
    if (doc?.hiddenAt) await this.setHidden(doc, false);
    await this.audit.record(by, 'clearReport', id, { reporters: await this.slotHead(id, c.reporters) });
    return true;
  }

  /**
   * A moderator deleted the message (the lifecycle made the tombstone): its report is decided
   * and the action audited under the token's label.
   */
  async closeAsDeleted(by: string, id: string, sender: string): Promise<void> {
    // The tombstone was pushed by the deletion itself (hidden or not, it shows nothing).
    await this.change(id, { $unset: { hiddenAt: '' } }, false);
    await this.models.ReportCase.updateOne({ _id: id }, { $set: { status: 'deleted', decidedAt: new Date() } }).exec();
    await this.audit.record(by, 'deleteMessage', id, { sender });
  }
}
