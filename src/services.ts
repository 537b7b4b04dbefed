/**
 * The services of one server instance, wired together. Each `createServer` call gets its
 * own set (tests run restarted servers and two instances in one process).
 */
import type { Logger } from 'pino';
import type { Config } from './config';
import type { Database } from './db/database';
import type { FormatOptions } from './errors';
import { messageModel, type MessageDoc } from './messages/message.model';
import { MessageService } from './messages/message.service';
import { MessageStore } from './messages/message.store';
import { PresenceService } from './presence/presence.service';
import type { MessagePayload, PubSub } from './pubsub';
import { RealtimeService } from './realtime/realtime.service';
import { userModel } from './users/user.model';
import { UserService } from './users/user.service';

export interface Services {
  config: Config;
  logger: Logger;
  db: Database;
  pubsub: PubSub;
  users: UserService;
  messages: MessageService;
  presence: PresenceService;
  realtime: RealtimeService;
  /** Absolute or root-relative URL of an avatar. */
  avatarUrl(seed: string): string;
}

export async function createServices(opts: {
  config: Config;
  logger: Logger;
  db: Database;
  pubsub: PubSub;
  format: FormatOptions;
}): Promise<Services> {
  const { config, logger, db, pubsub } = opts;
  const users = new UserService(userModel(db.connection), { kind: db.kind });
  const store = new MessageStore(messageModel(db.connection), { kind: db.kind });
  const messages = new MessageService(store, users, pubsub);
  const presence = new PresenceService(userModel(db.connection), users, pubsub, {
    graceMs: config.presenceGraceMs,
    logger,
  });

  const toPayloads = async (docs: MessageDoc[]): Promise<MessagePayload[]> => {
    const ids = [...new Set(docs.flatMap((d) => (d.recipient ? [d.sender, d.recipient] : [d.sender])))];
    const found = await users.getMany(ids);
    const byId = new Map(found.filter((u) => u !== null).map((u) => [u!.id, u!]));
    return docs.map((message) => ({
      message,
      sender: byId.get(message.sender)!,
      recipient: message.recipient ? byId.get(message.recipient) ?? null : null,
    }));
  };
  const realtime = new RealtimeService({
    pubsub,
    users,
    messages: { store, toPayloads },
    format: opts.format,
    maxBufferedBytes: config.wsMaxBufferedBytes,
    logger,
    fanout: config.fanout,
  });

  const services: Services = {
    config,
    logger,
    db,
    pubsub,
    users,
    messages,
    presence,
    realtime,
    avatarUrl: (seed) => `${config.publicUrl ?? ''}/avatars/${encodeURIComponent(seed)}.svg`,
  };
  realtime.setServices(services);
  return services;
}

/** Creates the indexes the models declare (autoIndex is off so start-up order is explicit). */
export async function ensureIndexes(db: Database): Promise<void> {
  await userModel(db.connection).createIndexes();
  await messageModel(db.connection).createIndexes();
}
