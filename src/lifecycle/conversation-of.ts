import { BadUserInputError } from '../errors';
import type { MessageService } from '../messages/message.service';
import type { UserRecord } from '../users/user.type';

/**
 * The conversation named by `with`/`room` arguments (neither: the lobby). Rooms are not part
 * of this branch: a `room` is answered as an unknown room, exactly as a room the viewer
 * cannot see will be.
 */
export async function conversationOf(
  messages: Pick<MessageService, 'conversationWith'>,
  viewer: { id: string },
  args: { with?: unknown; room?: unknown },
): Promise<{ key: string; other: UserRecord | null }> {
  if (args.with != null && args.room != null) throw new BadUserInputError('Pass either with or room, not both', 'room');
  if (args.room != null) throw new BadUserInputError('room is not a known room', 'room');
  return messages.conversationWith(viewer, args.with as string | null | undefined);
}
