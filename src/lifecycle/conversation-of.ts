import type { MessageService } from '../messages/message.service';
import type { UserRecord } from '../users/user.type';

/**
 * The conversation named by `with`/`room` arguments (neither: the lobby), readable by the
 * viewer: the messages domain's rules (a private room the viewer is not in is BAD_USER_INPUT).
 */
export async function conversationOf(
  messages: Pick<MessageService, 'resolveConversation'>,
  viewer: { id: string },
  args: { with?: unknown; room?: unknown },
): Promise<{ key: string; other: UserRecord | null; roomId: string | null }> {
  return messages.resolveConversation(viewer, {
    with: args.with as string | null | undefined,
    room: args.room as string | null | undefined,
  });
}
