/**
 * Reports (any user) and moderation (moderators only: see moderator.ts). Thin: arguments in,
 * a service call, a view out.
 */
import { Arg, Args, ArgsType, Ctx, Field, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../context';
import { toMessageView } from '../messages/message.type';
import type { AuditLog } from './audit';
import type { BanService } from './ban.service';
import type { ModeratorAuth } from './moderator';
import { ModerationActionConnection, ReportConnection, ReportReason } from './moderation.type';
import type { ReportReasonValue, ReportService } from './report.service';
import type { SlowMode } from './slow-mode';
import { LOBBY, ROOM_ID, roomKey } from '../messages/conversation';
import { BadUserInputError, ForbiddenError } from '../errors';
import type { RoomService } from '../rooms/room.service';
import type { RateLimits } from '../security/rate-limit';

@ArgsType()
class PageArgs {
  @Field(() => Int, { nullable: true, description: 'At most 50 (reports) or 100 (actions); default 20' })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;
}

const pageInfo = (cursors: string[], hasNextPage: boolean, after?: string | null) => ({
  hasNextPage,
  hasPreviousPage: after != null,
  startCursor: cursors[0] ?? null,
  endCursor: cursors[cursors.length - 1] ?? null,
});

@Resolver()
export class ModerationResolver {
  constructor(
    private readonly auth: ModeratorAuth,
    private readonly reportService: ReportService,
    private readonly bans: BanService,
    private readonly audit: AuditLog,
    private readonly slowModes: SlowMode,
    private readonly rooms: Pick<RoomService, 'visible' | 'get'>,
    private readonly limits?: Pick<RateLimits, 'consume'>,
  ) {}

  @Query(() => Int, {
    description: 'The slow mode of the lobby, or of `room`: seconds between one user’s messages there (0: off).',
  })
  async slowMode(@Arg('room', () => ID, { nullable: true }) room: string | null, @Ctx() ctx: Context): Promise<number> {
    if (room == null) return this.slowModes.of(LOBBY);
    await this.rooms.visible(ctx.user.id, room);
    return this.slowModes.of(roomKey(room));
  }

  @Mutation(() => Boolean, {
    description:
      'One message per `seconds` (0..3600; 0: off) per user in the lobby (moderators only) or in `room` ' +
      '(moderators, or the room’s creator).',
  })
  async setSlowMode(
    @Arg('seconds', () => Int) seconds: number,
    @Arg('room', () => ID, { nullable: true }) room: string | null,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    if (room == null) return this.slowModes.set(this.auth.require(ctx).label, LOBBY, seconds);
    const moderator = this.auth.identify(ctx.moderatorToken);
    // A moderator reaches any room; to anyone else a room they cannot see answers as an
    // unknown one (private rooms cannot be probed).
    const doc = moderator
      ? ROOM_ID.test(room)
        ? await this.rooms.get(room)
        : null
      : (await this.rooms.visible(ctx.user.id, room)).room;
    if (!doc) throw new BadUserInputError('room is not a known room', 'room');
    if (!moderator && doc.createdBy !== ctx.user.id) {
      throw new ForbiddenError('Only a moderator or the room’s creator may set its slow mode');
    }
    return this.slowModes.set(moderator?.label ?? `creator:${ctx.user.id}`, roomKey(doc._id), seconds);
  }

  @Mutation(() => Boolean, {
    description:
      'Reports a message the viewer can see, once per message. At REPORT_HIDE_THRESHOLD distinct reporters ' +
      '(default 3) it is hidden from everyone but its sender until a moderator clears or deletes it.',
  })
  async reportMessage(
    @Arg('id', () => ID) id: string,
    @Arg('reason', () => ReportReason) reason: ReportReasonValue,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    // Counted before the message is looked up: probing unknown ids costs the same.
    await this.limits?.consume('reportMessage', { user: ctx.user.id });
    return this.reportService.report(ctx.user.id, id, reason);
  }

  @Query(() => Boolean, { description: 'Whether this request carries a moderator token (never an error).' })
  isModerator(@Ctx() ctx: Context): boolean {
    return this.auth.identify(ctx.moderatorToken) !== null;
  }

  @Query(() => ReportConnection, { description: 'Moderators only: open reports, newest first, one per message.' })
  async reports(@Args() args: PageArgs, @Ctx() ctx: Context) {
    this.auth.require(ctx);
    const { reports, hasNextPage } = await this.reportService.page(args.first ?? 20, args.after);
    const edges = reports.map((r) => ({
      cursor: this.reportService.reportCursor(r),
      node: { ...r, message: toMessageView(r.message) },
    }));
    return {
      edges,
      pageInfo: pageInfo(
        edges.map((e) => e.cursor),
        hasNextPage,
        args.after,
      ),
    };
  }

  @Query(() => ModerationActionConnection, { description: 'Moderators only: the audit log, newest first.' })
  async moderationLog(@Args() args: PageArgs, @Ctx() ctx: Context) {
    this.auth.require(ctx);
    const { entries, hasNextPage } = await this.audit.page(args.first ?? 20, args.after);
    const edges = entries.map((e) => ({
      cursor: e._id.toHexString(),
      node: {
        id: e._id.toHexString(),
        by: e.by,
        action: e.action,
        target: e.target,
        details: e.details ? JSON.stringify(e.details) : null,
        at: e.at,
      },
    }));
    return {
      edges,
      pageInfo: pageInfo(
        edges.map((e) => e.cursor),
        hasNextPage,
        args.after,
      ),
    };
  }

  @Mutation(() => Boolean, { description: 'Moderators only: the reported message is fine; it is shown again.' })
  async clearReport(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return this.reportService.clear(this.auth.require(ctx).label, id);
  }

  @Mutation(() => Boolean, {
    description:
      'Moderators only. The user’s sends fail with FORBIDDEN for `hours` (1..8760); with shadow they appear to ' +
      'succeed to the sender but nobody else sees them. Also applies to new identities from the network the ' +
      'user last sent from.',
  })
  async banUser(
    @Arg('id', () => ID) id: string,
    @Arg('hours', () => Int) hours: number,
    @Arg('shadow', () => Boolean, { nullable: true }) shadow: boolean | null,
    @Ctx() ctx: Context,
  ): Promise<boolean> {
    return this.bans.ban(this.auth.require(ctx).label, id, hours, shadow === true);
  }

  @Mutation(() => Boolean, { description: 'Moderators only: lifts the user’s ban (and their network’s).' })
  async unbanUser(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<boolean> {
    return this.bans.unban(this.auth.require(ctx).label, id);
  }
}
