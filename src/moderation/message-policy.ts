/**
 * The messages domain's abuse-control policy (messages/message.policy.ts), made of the
 * blocks and moderation services: who may send, who sees what in history and live.
 */
import type { BlockService } from '../blocks/block.service';
import type { Context } from '../context';
import { ForbiddenError } from '../errors';
import type { MessagePayload } from '../messages/message.events';
import type { MessageDoc } from '../messages/message.model';
import type { MessagePolicy, SendAdmission, SendRequest, UpdateDelivery } from '../messages/message.policy';
import { parseUserId } from '../users/user.service';

/** Whether a stored message is visible to its sender only (shadow ban, hidden by reports). */
export const senderOnly = (m: Pick<MessageDoc, 'shadow' | 'hiddenAt'>): boolean => m.shadow === true || !!m.hiddenAt;

/** Hidden by reports (a tombstone has nothing left to hide). */
export const hiddenByReports = (m: Pick<MessageDoc, 'hiddenAt' | 'deletedAt'>): boolean => !!m.hiddenAt && !m.deletedAt;

/**
 * What viewers other than the sender receive of a message hidden by reports: its place and
 * the fact that it is hidden (`hidden: true`), nothing of its content.
 */
export function redacted(m: MessageDoc): MessageDoc {
  return { ...m, text: '', reactions: [], replyTo: null, clientId: null };
}

/** Checks that run before a send is stored (bans, content rules, floods). */
export interface SendCheck {
  check(ctx: Context, send: SendRequest): Promise<SendAdmission>;
}

export class AbusePolicy implements MessagePolicy {
  constructor(
    private readonly blocks: Pick<BlockService, 'blocks' | 'blockedBy' | 'blockersOf'>,
    private readonly checks: readonly SendCheck[] = [],
  ) {}

  async admit(ctx: Context, send: SendRequest): Promise<SendAdmission> {
    if (send.to !== null) {
      parseUserId(send.to, 'to');
      if (await this.blocks.blocks(send.to, ctx.user.id)) {
        throw new ForbiddenError('This user does not accept your direct messages');
      }
    }
    let shadow = false;
    for (const c of this.checks) shadow = (await c.check(ctx, send)).shadow === true || shadow;
    return shadow ? { shadow } : {};
  }

  async visible(viewerId: string, docs: MessageDoc[]): Promise<MessageDoc[]> {
    const blocked = await this.blocks.blockedBy(viewerId);
    if (blocked.size === 0 && !docs.some(senderOnly)) return docs;
    return docs.filter((m) => m.sender === viewerId || (!blocked.has(m.sender) && !senderOnly(m)));
  }

  audience(p: MessagePayload): ((viewerId: string) => boolean) | undefined {
    const sender = p.message.sender;
    if (senderOnly(p.message)) return (viewer) => viewer === sender;
    const blockers = this.blocks.blockersOf(sender);
    if (!blockers?.size) return undefined;
    return (viewer) => !blockers.has(viewer);
  }

  updateAudience<P extends MessagePayload>(p: P): Array<UpdateDelivery<P>> | undefined {
    const m = p.message;
    const sender = m.sender;
    const isSender = (viewer: string) => viewer === sender;
    // A shadow message never existed for anyone else: neither do its changes.
    if (m.shadow === true) return [{ payload: p, to: isSender }];
    const blockers = this.blocks.blockersOf(sender);
    const unblocked = blockers?.size ? (viewer: string) => !blockers.has(viewer) : () => true;
    if (hiddenByReports(m)) {
      return [
        { payload: p, to: isSender },
        { payload: { ...p, message: redacted(m) }, to: unblocked },
      ];
    }
    return blockers?.size ? [{ payload: p, to: (viewer) => isSender(viewer) || unblocked(viewer) }] : undefined;
  }
}
