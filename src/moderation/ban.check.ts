import type { Context } from '../context';
import { ForbiddenError } from '../errors';
import type { SendAdmission } from '../messages/message.policy';
import type { BanService } from './ban.service';
import type { SendCheck } from './message-policy';

/** Refuses a banned user's sends; lets a shadow-banned user's through as shadow messages. */
export class BanCheck implements SendCheck {
  constructor(private readonly bans: Pick<BanService, 'status' | 'noteNetwork'>) {}

  async check(ctx: Context): Promise<SendAdmission> {
    const ban = await this.bans.status(ctx.user, ctx.ip);
    if (ban && !ban.shadow) throw new ForbiddenError('You are banned from sending messages for now');
    await this.bans.noteNetwork(ctx.user.id, ctx.ip);
    return ban ? { shadow: true } : {};
  }
}
