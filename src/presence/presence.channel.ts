/** The `presence` channel kind: one global topic of online/offline transitions. */
import type { ChannelKind } from '../realtime/engine';
import { PRESENCE_TOPIC } from './presence.events';

export function presenceChannelKind(): ChannelKind<typeof PRESENCE_TOPIC, undefined> {
  return { name: 'presence', route: () => ({ topic: PRESENCE_TOPIC, options: undefined }) };
}
