/**
 * Who is online. A user is online while at least one of their WebSocket connections is
 * open on any instance; the last one closing starts a grace period (PRESENCE_GRACE_MS) so a
 * page reload does not flap. `presenceChanged` fires only on the global online/offline
 * transitions, once.
 *
 * This instance counts its own connections and runs the grace timers; the registry
 * (presence.registry.ts: in memory, or Redis across instances) decides the global
 * transitions. The state is mirrored to the users collection (`online`, `lastSeenAt`) so it
 * survives restarts: after a restart, users still marked online get the grace period to come
 * back before they are marked offline, and a periodic sweep repairs anything left behind.
 */
import type { Logger } from 'pino';
import { Types } from 'mongoose';
import type { PubSub } from '../realtime/pubsub';
import type { UserModel } from '../users/user.model';
import type { UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import { KeyedQueue } from '../util/keyed-queue';
import { PRESENCE_TOPIC, type PresencePayload } from './presence.events';
import { LocalPresenceRegistry, type PresenceRegistry } from './presence.registry';

/** Most users one `onlineUsers` returns (its default too). */
export const ONLINE_USERS_MAX = 200;
export interface PresenceOptions {
  graceMs: number;
  /** How often users marked online in the database are checked against the registry. Default 60 s. */
  sweepMs?: number;
  /** Global state; default in memory (one instance). */
  registry?: PresenceRegistry;
  logger: Logger;
}

interface LocalState {
  connections: number;
  offlineTimer?: NodeJS.Timeout;
}

export class PresenceService {
  private readonly local = new Map<string, LocalState>();
  private readonly registry: PresenceRegistry;
  /** A user's registry calls, writes and events run in the order they happened. */
  private readonly transitions = new KeyedQueue();
  private sweepTimer?: NodeJS.Timeout;
  private startupTimer?: NodeJS.Timeout;
  private stopPresenceEvents?: () => void;
  private stopped = false;

  constructor(
    private readonly model: UserModel,
    private readonly users: UserService,
    private readonly pubsub: PubSub,
    private readonly options: PresenceOptions,
  ) {
    this.registry = options.registry ?? new LocalPresenceRegistry();
  }

  async start(): Promise<void> {
    // Events from every instance keep this instance's view (and cached users) current.
    this.stopPresenceEvents = await this.pubsub.subscribe(PRESENCE_TOPIC, (p) => {
      this.registry.note(p.user.id, p.online);
      if (!p.online) this.users.notePresence(p.user.id, p.at);
    });
    // Users of an instance that died are released by whichever instance notices.
    await this.registry.start((userId) => {
      void this.users
        .get(userId)
        .then((u) => u && this.transitions.run(userId, () => this.record(u, false, new Date())));
    });
    // Whoever the database still shows online (a previous run) gets the grace period to
    // come back before being marked offline: a restart during a deploy does not flap.
    this.startupTimer = setTimeout(() => void this.sweep(), this.options.graceMs);
    this.startupTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), this.options.sweepMs ?? 60000);
    this.sweepTimer.unref();
  }

  isOnline(userId: string): boolean {
    return this.registry.isOnline(userId);
  }

  onlineUserIds(): Promise<string[]> {
    return this.registry.onlineUserIds();
  }

  /**
   * Whether `userId` has a WebSocket open on this instance (or closed one within the grace
   * period). Subscriptions only come over WebSockets, so without one here no subscription of
   * theirs can hear a publication that stays on this instance (local pub/sub).
   */
  connectedHere(userId: string): boolean {
    return this.local.has(userId);
  }

  /** Users with local bookkeeping (connections or a pending grace timer), for leak checks. */
  trackedCount(): number {
    return this.local.size;
  }

  /** A WebSocket connection of `user` opened. */
  connected(user: UserRecord): void {
    const existing = this.local.get(user.id);
    if (existing) {
      existing.connections++;
      // Back within the grace period (a reload): nothing changes for anyone else.
      clearTimeout(existing.offlineTimer);
      existing.offlineTimer = undefined;
      return;
    }
    this.local.set(user.id, { connections: 1 });
    void this.transitions
      .run(user.id, async () => {
        if (await this.registry.join(user.id)) await this.record(user, true, new Date());
      })
      .catch((err) => this.options.logger.warn({ err, userId: user.id }, 'presence: join failed'));
  }

  /** A WebSocket connection of `user` closed. */
  disconnected(user: UserRecord): void {
    const state = this.local.get(user.id);
    if (!state) return;
    state.connections = Math.max(0, state.connections - 1);
    if (state.connections > 0 || state.offlineTimer) return;
    state.offlineTimer = setTimeout(() => {
      state.offlineTimer = undefined;
      if (state.connections > 0 || this.stopped) return;
      this.local.delete(user.id);
      void this.transitions
        .run(user.id, async () => {
          if (await this.registry.leave(user.id)) await this.record(user, false, new Date());
        })
        .catch((err) => this.options.logger.warn({ err, userId: user.id }, 'presence: leave failed'));
    }, this.options.graceMs);
    state.offlineTimer.unref();
  }

  /** Stores a global transition and tells every instance's subscribers. */
  private async record(user: UserRecord, online: boolean, at: Date): Promise<void> {
    this.registry.note(user.id, online);
    if (!online) this.users.notePresence(user.id, at);
    const payload: PresencePayload = { user: online ? user : { ...user, lastSeenAt: at }, online, at };
    try {
      await this.model.updateOne(
        { _id: new Types.ObjectId(user.id) },
        online ? { $set: { online: true } } : { $set: { online: false, lastSeenAt: at } },
      );
    } catch (err) {
      // The registry stays right; the sweep repairs the stored copy later.
      this.options.logger.warn({ err, userId: user.id }, 'could not store presence');
    }
    await this.pubsub.publish(PRESENCE_TOPIC, payload).catch(() => undefined);
  }

  /** Marks offline every user the database shows online whom no instance holds. */
  async sweep(): Promise<number> {
    if (this.stopped) return 0;
    try {
      const stale = await this.model.find({ online: true }, { _id: 1 }).lean().exec();
      const online = new Set(await this.registry.onlineUserIds());
      let fixed = 0;
      for (const { _id } of stale) {
        const id = String(_id);
        if (online.has(id) || this.local.has(id)) continue;
        const at = new Date();
        await this.model.updateOne({ _id }, { $set: { online: false, lastSeenAt: at } });
        this.users.notePresence(id, at);
        fixed++;
      }
      if (fixed) this.options.logger.info({ fixed }, 'presence sweep marked stale users offline');
      return fixed;
    } catch (err) {
      this.options.logger.warn({ err }, 'presence sweep failed');
      return 0;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.startupTimer);
    for (const s of this.local.values()) clearTimeout(s.offlineTimer);
    this.stopPresenceEvents?.();
    await this.registry.stop();
  }
}
