/**
 * Abuse control's collections. Every document is found by `_id` equality (the only lookup
 * FerretDB 1.x backs with an index) and claimed by insert where two writers could race (it has
 * no atomic find-and-modify under concurrency).
 */
import { Schema, Types, type Connection, type Model } from 'mongoose';

/** "This user reported this message": `_id` `<messageId>|<reporterId>`, inserted once. */
export interface ReportClaimDoc {
  _id: string;
  at: Date;
}

/** The n-th report of a message: `_id` `<messageId>#<n>`, n = 1, 2, ... without gaps. */
export interface ReportSlotDoc {
  _id: string;
  message: string;
  reporter: string;
  reason: string;
  at: Date;
}

export type ReportStatus = 'open' | 'cleared' | 'deleted';

/** A reported message, in the moderators' queue. `_id` is the message id. */
export interface ReportCaseDoc {
  _id: string;
  conversation: string;
  sender: string;
  /** The first report: the queue's order. */
  createdAt: Date;
  status: ReportStatus;
  /** Reports seen so far (a hint for counting the slots). */
  reporters: number;
  decidedAt?: Date | null;
}

/** A ban: `_id` `user:<id>` or `net:<network hash>`. */
export interface BanDoc {
  _id: string;
  until: Date;
  shadow: boolean;
  /** The moderator's label. */
  by: string;
  at: Date;
}

/** The keyed hash of the network a user last sent from. `_id` is the user id. */
export interface NetworkDoc {
  _id: string;
  net: string;
  at: Date;
}

/** One moderator action. */
export interface AuditDoc {
  _id: Types.ObjectId;
  at: Date;
  /** The moderator token's label. */
  by: string;
  action: string;
  /** A user or message id. */
  target: string;
  details?: Record<string, unknown>;
}

/** A conversation's slow mode: `_id` is the conversation key. */
export interface SlowModeDoc {
  _id: string;
  seconds: number;
  by: string;
  at: Date;
}

const str = { type: String, required: true } as const;
const date = { type: Date, required: true } as const;

const schemas = {
  ReportClaim: new Schema<ReportClaimDoc>({ _id: str, at: date }, { collection: 'report_claims', versionKey: false }),
  ReportSlot: new Schema<ReportSlotDoc>(
    { _id: str, message: str, reporter: str, reason: str, at: date },
    { collection: 'report_slots', versionKey: false },
  ),
  ReportCase: new Schema<ReportCaseDoc>(
    {
      _id: str,
      conversation: str,
      sender: str,
      createdAt: date,
      status: str,
      reporters: { type: Number, required: true },
      decidedAt: { type: Date, default: null },
    },
    { collection: 'report_cases', versionKey: false },
  ),
  Ban: new Schema<BanDoc>(
    { _id: str, until: date, shadow: { type: Boolean, required: true }, by: str, at: date },
    { collection: 'bans', versionKey: false },
  ),
  Network: new Schema<NetworkDoc>({ _id: str, net: str, at: date }, { collection: 'user_networks', versionKey: false }),
  Audit: new Schema<AuditDoc>(
    { at: date, by: str, action: str, target: str, details: { type: Schema.Types.Mixed } },
    { collection: 'moderation_log', versionKey: false },
  ),
  SlowMode: new Schema<SlowModeDoc>(
    { _id: str, seconds: { type: Number, required: true }, by: str, at: date },
    { collection: 'slow_modes', versionKey: false },
  ),
};
// The queue lists open cases newest first (MongoDB uses the index; FerretDB scans the cases).
schemas.ReportCase.index({ status: 1, createdAt: -1 });

type Models = {
  ReportClaim: Model<ReportClaimDoc>;
  ReportSlot: Model<ReportSlotDoc>;
  ReportCase: Model<ReportCaseDoc>;
  Ban: Model<BanDoc>;
  Network: Model<NetworkDoc>;
  Audit: Model<AuditDoc>;
  SlowMode: Model<SlowModeDoc>;
};
export type ModerationModels = Models;

export function moderationModels(connection: Connection): Models {
  const get = <K extends keyof Models>(name: K): Models[K] =>
    (connection.models[name] as Models[K] | undefined) ??
    (connection.model(name, schemas[name] as Schema) as unknown as Models[K]);
  return {
    ReportClaim: get('ReportClaim'),
    ReportSlot: get('ReportSlot'),
    ReportCase: get('ReportCase'),
    Ban: get('Ban'),
    Network: get('Network'),
    Audit: get('Audit'),
    SlowMode: get('SlowMode'),
  };
}

/** Creates the collections and the one secondary index (autoIndex is off). */
export async function ensureModerationIndexes(models: Models): Promise<void> {
  for (const model of Object.values(models) as Array<Model<unknown>>) {
    await model.createCollection().catch(() => undefined);
  }
  await models.ReportCase.createIndexes();
}
