import type { UserRecord } from '../users/user.type';

/**
 * Who a message's sender is once the sender erased their data (deleteMyData): the tombstones
 * they leave keep their place in history, attributed to nobody.
 */
export const GHOST_ID = 'deleted';

export const GHOST_USER: UserRecord = {
  id: GHOST_ID,
  username: 'Deleted user',
  avatarSeed: 'deleted',
  createdAt: new Date(0),
  lastSeenAt: null,
};
