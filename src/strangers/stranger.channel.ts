/** The `strangers` channel kind: the viewer's own MATCHED/ENDED events, on a topic of their own. */
import type { ChannelKind } from '../realtime/engine';
import { strangerTopic } from './stranger.events';

export function strangerChannelKind(): ChannelKind<`stranger:${string}`, undefined> {
  return { name: 'strangers', route: (viewerId) => ({ topic: strangerTopic(viewerId), options: undefined }) };
}
