/** The audit log: every moderator action (who by token label, what, when), queryable by moderators. */
import { Types, type Model } from 'mongoose';
import { BadUserInputError } from '../errors';
import type { AuditDoc } from './moderation.model';

export const MAX_AUDIT_PAGE = 100;

export class AuditLog {
  constructor(private readonly model: Model<AuditDoc>) {}

  async record(by: string, action: string, target: string, details?: Record<string, unknown>): Promise<void> {
    await this.model.collection.insertOne({
      _id: new Types.ObjectId(),
      at: new Date(),
      by,
      action,
      target,
      ...(details ? { details } : {}),
    });
  }

  /** Newest first; `after` is an entry's cursor (its id). Returns one more than asked when there is a next page. */
  async page(first: number, after?: string | null): Promise<{ entries: AuditDoc[]; hasNextPage: boolean }> {
    if (!Number.isInteger(first) || first < 0 || first > MAX_AUDIT_PAGE) {
      throw new BadUserInputError(`first must be 0..${MAX_AUDIT_PAGE}`, 'first');
    }
    let filter = {};
    if (after != null) {
      if (!/^[0-9a-f]{24}$/.test(after)) throw new BadUserInputError('after is not a cursor of this list', 'after');
      filter = { _id: { $lt: new Types.ObjectId(after) } };
    }
    const docs = await this.model
      .find(filter)
      .sort({ _id: -1 })
      .limit(first + 1)
      .lean<AuditDoc[]>()
      .exec();
    return { entries: docs.slice(0, first), hasNextPage: docs.length > first };
  }
}
