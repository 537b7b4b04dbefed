/** Picks the pub/sub transport: Redis when REDIS_URL is set, else in-process. */
import type { Logger } from 'pino';
import type { Config } from '../config';
import { LocalPubSub, type PubSub } from '../pubsub';
import { RedisPubSub } from './redis.pubsub';

export async function createPubSub(config: Config, logger: Logger): Promise<PubSub> {
  if (!config.redis.url) return new LocalPubSub();
  const pubsub = await RedisPubSub.connect({ url: config.redis.url, prefix: config.redis.prefix, logger });
  logger.info({ prefix: config.redis.prefix }, 'pub/sub through Redis');
  return pubsub;
}
