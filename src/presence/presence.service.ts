/**
 * Who is online. A user is online while at least one of their WebSocket connections is
 * open; the last one closing starts a grace period (PRESENCE_GRACE_MS) so a page reload
 * does not flap. `presenceChanged` fires only on the online/offline transitions.
 *
 * The state lives in memory (authoritative for this instance) and is mirrored to the
 * users collection (`online`, `lastSeenAt`) so it survives restarts. After a restart,
 * users still marked online get the grace period to reconnect before they are marked
 * offline, and a periodic sweep catches anything left behind (a crashed process).
 */
import type { Logger } from 'pino';
import { Types } from 'mongoose';
import { Topic, type PresencePayload, type PubSub } from '../pubsub';
import type { UserModel } from '../users/user.model';
import type { UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import { KeyedQueue } from '../util/keyed-queue';

export interface PresenceOptions {
  graceMs: number;
  /** How often users marked online in the database are checked against reality. Default 60 s. */
  sweepMs?: number;
  logger: Logger;
}

interface LocalState {
  connections: number;
  offlineTimer?: NodeJS.Timeout;
}

export class PresenceService {
  private readonly local = new Map<string, LocalState>();
  private readonly onlineIds = new Set<string>();
  /** A user's online/offline writes and events run in the order they happened. */
  private readonly transitions = new KeyedQueue();
  private sweepTimer?: NodeJS.Timeout;
  private startupTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly model: UserModel,
    private readonly users: UserService,
    private readonly pubsub: PubSub,
    private readonly options: PresenceOptions,
  ) {}

  async start(): Promise<void> {
    // Whoever the database still shows online (a previous run) gets the grace period to
    // come back before being marked offline: a restart during a deploy does not flap.
    this.startupTimer = setTimeout(() => void this.sweep(), this.options.graceMs);
    this.startupTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), this.options.sweepMs ?? 60000);
    this.sweepTimer.unref();
  }

  isOnline(userId: string): boolean {
    return this.onlineIds.has(userId);
  }

  /** Users with local bookkeeping (connections or a pending grace timer), for leak checks. */
  trackedCount(): number {
    return this.local.size;
  }

  onlineUserIds(): string[] {
    return [...this.onlineIds];
  }

  /** A WebSocket connection of `user` opened. */
  connected(user: UserRecord): void {
    const state = this.local.get(user.id) ?? { connections: 0 };
    state.connections++;
    this.local.set(user.id, state);
    if (state.offlineTimer) {
      clearTimeout(state.offlineTimer);
      state.offlineTimer = undefined;
    }
    if (!this.onlineIds.has(user.id)) {
      this.onlineIds.add(user.id);
      void this.transition(user, true);
    }
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
      if (this.onlineIds.delete(user.id)) void this.transition(user, false);
    }, this.options.graceMs);
    state.offlineTimer.unref();
  }

  private transition(user: UserRecord, online: boolean): Promise<void> {
    const at = new Date();
    return this.transitions.run(user.id, () => this.record(user, online, at));
  }

  private async record(user: UserRecord, online: boolean, at: Date): Promise<void> {
    if (!online) this.users.notePresence(user.id, at);
    const payload: PresencePayload = { user: online ? user : { ...user, lastSeenAt: at }, online, at };
    try {
      await this.model.updateOne(
        { _id: new Types.ObjectId(user.id) },
        online ? { $set: { online: true } } : { $set: { online: false, lastSeenAt: at } },
      );
    } catch (err) {
      // The in-memory state stays right; the sweep repairs the stored copy later.
      this.options.logger.warn({ err, userId: user.id }, 'could not store presence');
    }
    await this.pubsub.publish(Topic.presence, payload).catch(() => undefined);
  }

  /** Marks offline every user the database shows online who has no connection here. */
  async sweep(): Promise<number> {
    if (this.stopped) return 0;
    try {
      const stale = await this.model.find({ online: true }, { _id: 1 }).lean().exec();
      let fixed = 0;
      for (const { _id } of stale) {
        const id = String(_id);
        if (this.onlineIds.has(id) || this.local.has(id)) continue;
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

  stop(): void {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.startupTimer);
    for (const s of this.local.values()) clearTimeout(s.offlineTimer);
  }
}
