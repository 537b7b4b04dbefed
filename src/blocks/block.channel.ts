/** How the blocks domain plugs into other domains' live subscriptions. */
import type { ChannelKind } from '../realtime/engine';
import type { TopicName } from '../realtime/pubsub';
import type { BlockService } from './block.service';

/**
 * The same kind, whose subscriptions start only once the viewer's blocked set is loaded here,
 * so the fan-out's synchronous check never runs on a set still being read.
 */
export function afterBlocksLoaded<K extends TopicName, O>(
  kind: ChannelKind<K, O>,
  blocks: Pick<BlockService, 'blockedBy'>,
): ChannelKind<K, O> {
  return {
    ...kind,
    async route(viewerId, args, subscriber) {
      await blocks.blockedBy(viewerId);
      return kind.route(viewerId, args, subscriber);
    },
  };
}
