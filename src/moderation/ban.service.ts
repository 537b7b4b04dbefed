/**
 * Bans by user and by network. A ban applies to the user, and for its duration to identities
 * created afterwards from the network the user last sent from: the network is stored only as
 * an HMAC (keyed by a server secret) of the address, IPv4 as is and IPv6 by its /64, never
 * the address itself. See docs/MODERATION.md for what is kept and for how long.
 */
import { createHmac } from 'node:crypto';
import { lru } from '../util/lru';
import { upsertWithRetry } from '../db/upsert';
import { BadUserInputError } from '../errors';
import type { PubSub } from '../realtime/pubsub';
import { ipKey } from '../security/ip';
import { parseUserId, type UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import type { AuditLog } from './audit';
import { BANS_TOPIC, type BanChange } from './moderation.events';
import type { ModerationModels } from './moderation.model';

export const MAX_BAN_HOURS = 24 * 365;
const DAY_MS = 24 * 3600 * 1000;
const PURGE_EVERY_MS = 3600 * 1000;

interface BanState {
  until: number;
  shadow: boolean;
  at: number;
}

export interface BanOptions {
  /** HMAC key of network hashes. */
  secret: string;
  networkRecordDays: number;
}

export class BanService {
  /** Ban lookups by key, kept current by BANS_TOPIC; a short TTL bounds a missed event. */
  private readonly bans = lru<string, BanState | false>(100000, { ttl: 60000 });
  /** The network hash last recorded per user (and when), to write it only when it changes or ages. */
  private readonly networks = lru<string, { net: string; at: number }>(100000);
  /**
   * Network hashes by address: every send asks twice (ban status, network note), and an
   * HMAC per ask was a visible share of a send's CPU. Deterministic, so never stale.
   */
  private readonly hashes = lru<string, string>(10000);
  private unsubscribe?: () => void;
  private purgeTimer?: NodeJS.Timeout;

  constructor(
    private readonly models: Pick<ModerationModels, 'Ban' | 'Network'>,
    private readonly users: Pick<UserService, 'get'>,
    private readonly pubsub: PubSub,
    private readonly audit: AuditLog,
    private readonly options: BanOptions,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.pubsub.subscribe(BANS_TOPIC, (c) => this.onChange(c));
    this.purgeTimer = setInterval(() => void this.purge().catch(() => undefined), PURGE_EVERY_MS);
    this.purgeTimer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.purgeTimer) clearInterval(this.purgeTimer);
  }

  /** The keyed hash of an address's network (IPv6 by /64). */
  networkOf(ip: string): string {
    let net = this.hashes.get(ip);
    if (net === undefined) {
      net = createHmac('sha256', this.options.secret).update(ipKey(ip)).digest('base64url').slice(0, 32);
      this.hashes.set(ip, net);
    }
    return net;
  }

  /** The ban that applies to this user sending from `ip`, or null. */
  async status(user: Pick<UserRecord, 'id' | 'createdAt'>, ip: string): Promise<{ shadow: boolean } | null> {
    const now = Date.now();
    const own = await this.lookup(`user:${user.id}`);
    if (own && own.until > now) return { shadow: own.shadow };
    if (!ip) return null;
    const net = await this.lookup(`net:${this.networkOf(ip)}`);
    // A network ban follows identities made after it, not the others behind the same address.
    if (net && net.until > now && new Date(user.createdAt).getTime() >= net.at) return { shadow: net.shadow };
    return null;
  }

  /** Remembers the network a user sends from (for a later ban); written when it changes, refreshed daily. */
  async noteNetwork(userId: string, ip: string): Promise<void> {
    if (!ip) return;
    const net = this.networkOf(ip);
    const known = this.networks.get(userId);
    if (known?.net === net && Date.now() - known.at < DAY_MS) return;
    const at = new Date();
    await upsertWithRetry(() =>
      this.models.Network.updateOne({ _id: userId }, { $set: { net, at } }, { upsert: true }).exec(),
    );
    this.networks.set(userId, { net, at: at.getTime() });
  }

  async ban(by: string, userId: string, hours: number, shadow: boolean): Promise<boolean> {
    parseUserId(userId, 'id');
    if (!Number.isInteger(hours) || hours < 1 || hours > MAX_BAN_HOURS) {
      throw new BadUserInputError(`hours must be an integer from 1 to ${MAX_BAN_HOURS}`, 'hours');
    }
    if (!(await this.users.get(userId))) throw new BadUserInputError('id is not a known user', 'id');
    const at = new Date();
    const until = new Date(at.getTime() + hours * 3600 * 1000);
    const keys = [`user:${userId}`];
    const network = await this.models.Network.findOne({ _id: userId }).lean().exec();
    if (network) keys.push(`net:${network.net}`);
    for (const key of keys) {
      await upsertWithRetry(() =>
        this.models.Ban.replaceOne({ _id: key }, { until, shadow, by, at }, { upsert: true }).exec(),
      );
      await this.announce({ key, until: until.getTime(), shadow, at: at.getTime() });
    }
    await this.audit.record(by, shadow ? 'shadowBan' : 'ban', userId, {
      hours,
      network: keys.length > 1,
      until: until.toISOString(),
    });
    return true;
  }

  async unban(by: string, userId: string): Promise<boolean> {
    parseUserId(userId, 'id');
    const keys = [`user:${userId}`];
    const network = await this.models.Network.findOne({ _id: userId }).lean().exec();
    if (network) keys.push(`net:${network.net}`);
    for (const key of keys) {
      await this.models.Ban.deleteOne({ _id: key }).exec();
      await this.announce({ key });
    }
    await this.audit.record(by, 'unban', userId);
    return true;
  }

  /**
   * deleteMyData: the network record of the user and a ban of the user's id (moot once the id
   * is gone). A ban of their network stays: it is about the network, and it is what stops
   * ban evasion through a new identity. The audit log keeps its entries.
   */
  async eraseUser(userId: string): Promise<void> {
    await this.models.Network.deleteOne({ _id: userId }).exec();
    await this.models.Ban.deleteOne({ _id: `user:${userId}` }).exec();
  }

  private async announce(change: BanChange): Promise<void> {
    this.onChange(change);
    await this.pubsub.publish(BANS_TOPIC, change).catch(() => {
      // Other instances' cached lookups expire within a minute.
    });
  }

  private onChange(c: BanChange): void {
    this.bans.set(
      c.key,
      c.until === undefined ? false : { until: c.until, shadow: c.shadow === true, at: c.at ?? Date.now() },
    );
  }

  private async lookup(key: string): Promise<BanState | false> {
    const cached = this.bans.get(key);
    if (cached !== undefined) return cached;
    const doc = await this.models.Ban.findOne({ _id: key }).lean().exec();
    const state = doc ? { until: doc.until.getTime(), shadow: doc.shadow, at: doc.at.getTime() } : false;
    this.bans.set(key, state);
    return state;
  }

  /** Drops expired bans and network records older than NETWORK_RECORD_DAYS. */
  async purge(now = Date.now()): Promise<void> {
    await this.models.Ban.deleteMany({ until: { $lt: new Date(now) } }).exec();
    await this.models.Network.deleteMany({
      at: { $lt: new Date(now - this.options.networkRecordDays * DAY_MS) },
    }).exec();
  }
}
