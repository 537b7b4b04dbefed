/**
 * Direct conversations of a user, read status and unread counts.
 *
 * Everything here is `_id` lookups (FerretDB 1.x answers any other query with a scan):
 * - a user's inbox is an append-only list of partner entries (`<user>:<n>`, see the model);
 * - the conversation's newest message carries per-sender message counts (MessageDoc.counts);
 * - the reader's marker (`_id` = `<reader>:<conversation>`) holds the other user's count at
 *   the last message marked read. unreadCount = newest count - marker count.
 */
import { lru } from '../util/lru';
import { seqId, type SeqKeys, type StorageStrategy } from '../db/strategy';
import { InsertBatcher } from '../db/insert-batcher';
import { upsertWithRetry } from '../db/upsert';
import { BadUserInputError } from '../errors';
import { directKey, messageId, parseMessageId } from '../messages/conversation';
import type { MessageDoc } from '../messages/message.model';
import type { MessageStore } from '../messages/message.store';
import type { PubSub } from '../realtime/pubsub';
import type { UserService } from '../users/user.service';
import type { UserRecord } from '../users/user.type';
import { KeyedQueue } from '../util/keyed-queue';
import { inboxTopic, readTopic, type InboxPayload, type ReadPayload } from './conversation.events';
import type {
  InboxEntryDoc,
  InboxEntryModel,
  InboxPairDoc,
  InboxPairModel,
  ReadMarkerModel,
} from './conversation.model';
import { ReadMarkerCache } from './read-markers';

/** The participant of direct conversation `dm:<a>:<b>` who is not `userId`. */
function otherOf(conversation: string, userId: string): string {
  const [, a, b] = conversation.split(':');
  return a === userId ? b : a;
}

/** Registering a direct pair, after its reads (ConversationService.preparePair). */
export interface PairRegistration {
  /** The writes: resolves once both inboxes hold the partner. */
  write(): Promise<void>;
  /**
   * The conversation was taken to be empty without reading its head: one of the two has an
   * inbox this instance knows to be empty. Its first message can be numbered 1 with no read;
   * the insert verifies it (a taken number is retried after reading the head).
   */
  assumedEmpty: boolean;
}
const NOTHING_TO_REGISTER: PairRegistration = { write: () => Promise.resolve(), assumedEmpty: false };

/** Most conversations one `conversations` returns (its default too). */
export const CONVERSATIONS_MAX = 200;
export interface ConversationSummary {
  with: UserRecord;
  lastMessage: MessageDoc | null;
  unreadCount: number;
}

const entryKeys = (owner: string): SeqKeys => ({ prefix: `${owner}:`, width: 8 });
const entryId = (owner: string, n: number) => seqId(entryKeys(owner), n);

/** How long pair markers gather before they are written. */
const MARKER_LINGER_MS = 25;
/** Messages read and updated per round trip while marking read. */
const MARK_BATCH = 200;
/** Where messages expire: unread messages counted one by one (beyond: stored counts), and how far back lastMessage is sought. */
const UNREAD_SCAN = 200;
const LAST_SCAN = 1000;
const LAST_BATCH = 50;

export class ConversationService {
  /** `<owner>:<other>` pairs known to be in the owner's inbox. */
  private readonly registered = lru<string, true>(200000);
  /** Inbox entry counts known to exist, by owner. */
  private readonly entryHeads = lru<string, number>(100000);
  private readonly inboxQueue = new KeyedQueue();
  /** Inbox entries and pair markers of new conversations, written in groups (insert-batcher.ts). */
  private readonly entryInserts: InsertBatcher<InboxEntryDoc>;
  private readonly pairInserts: InsertBatcher<InboxPairDoc>;
  private readonly readQueue = new KeyedQueue();
  /**
   * Read markers of active conversations (read-markers.ts), kept current on every instance
   * by the `read` events: a DM's `conversationUpdated` push reads none from the database.
   */
  private readonly readMarkers: ReadMarkerCache;

  constructor(
    private readonly entries: InboxEntryModel,
    private readonly pairs: InboxPairModel,
    private readonly markers: ReadMarkerModel,
    private readonly store: MessageStore,
    private readonly users: UserService,
    private readonly pubsub: PubSub,
    private readonly strategy: StorageStrategy,
    /** Whether a stored message is still there (expired ones are not); default all are. */
    private readonly isVisible: (doc: MessageDoc) => boolean = () => true,
    /**
     * Abuse control: the messages of a list the viewer may see (blocked senders, shadow
     * messages and messages hidden by reports are not theirs to see); default all.
     */
    private readonly visibleTo: (viewerId: string, docs: MessageDoc[]) => Promise<MessageDoc[]> = (_v, docs) =>
      Promise.resolve(docs),
    /**
     * Whether a `conversationUpdated` publication for `ownerId` could reach a subscriber. With
     * local pub/sub only a WebSocket on this instance can hold one; the push is built (reads,
     * a summary) only then. Default: always (pub/sub across instances).
     */
    private readonly mayBeSubscribed: (ownerId: string) => boolean = () => true,
  ) {
    this.entryInserts = new InsertBatcher(entries, strategy);
    // Nobody waits for a pair marker (see addPartners): a burst of first messages has its
    // markers written after its messages, not between them.
    this.pairInserts = new InsertBatcher(pairs, strategy, undefined, MARKER_LINGER_MS);
    this.readMarkers = new ReadMarkerCache({
      load: async (readerId, conversation) => {
        const doc = await this.strategy.findById(this.markers, `${readerId}:${conversation}`);
        return doc ? { seq: doc.seq, count: doc.count } : null;
      },
      watch: (conversation, apply) =>
        this.pubsub.subscribe(readTopic(conversation), (p) =>
          apply(p.reader.id, { seq: p.upTo.seq, count: p.upTo.counts?.[otherOf(conversation, p.reader.id)] ?? 0 }),
        ),
    });
  }

  /**
   * Records that `a` and `b` talk directly (in both inboxes). Idempotent; called before a DM
   * is stored. Equivalent to `(await preparePair(a, b)).write()`.
   */
  async registerPair(a: string, b: string): Promise<void> {
    await (await this.preparePair(a, b)).write();
  }

  /**
   * The reads of {@link registerPair}, all at once; the returned `write` does its writes.
   * Nothing is written before `write` is called, so a send reads this while its own
   * checks (blocking, the direct policy, the conversation's settings) are still running, and
   * writes only once they passed: a first message waits for one round of reads, not one per
   * check.
   *
   * A new conversation costs its head read (which the send's numbering needs anyway) and an
   * inbox head read per owner whose count this instance does not know (created() and earlier
   * appends tell it), concurrently, then one insert of the entries shared with every
   * other registration under way (group commit). The pair markers follow without being waited
   * for (see addPartners). An empty conversation has, short of a failed first store or two
   * first messages at once (which can only append a duplicate entry, which the list ignores),
   * no entries yet, so the markers are not looked up; and its read markers cannot exist yet,
   * so none is read for the inbox notifications either.
   *
   * Not even the head is read when one of the two has an inbox this instance knows to be
   * empty (a user it created, or whose inbox it read or wrote): every conversation that ever
   * stored a message is in both inboxes (entries first), so that user has talked to nobody,
   * and the conversation is taken to be empty (`assumedEmpty`). What stays unverified is
   * stale knowledge (the user registered through another instance meanwhile) and a
   * shadow-banned user's messages (stored without entries): the first message's insert
   * then finds number 1 taken and is retried after reading the head, and the entries can
   * only be appended twice, which list() ignores, as when two instances race. A new user's
   * first message thus waits for no read: a burst of them was a burst of head reads, each
   * its own command.
   */
  async preparePair(a: string, b: string): Promise<PairRegistration> {
    const wanted: Array<[string, string]> = [
      [a, b],
      [b, a],
    ];
    const missing = () => wanted.filter(([owner, other]) => !this.registered.has(`${owner}:${other}`));
    const owners = missing().map(([owner]) => owner);
    if (owners.length === 0) return NOTHING_TO_REGISTER;
    const conversation = directKey(a, b);
    const assumedEmpty = this.entryHeads.get(a) === 0 || this.entryHeads.get(b) === 0;
    const [fresh, heads] = await Promise.all([
      (async () => {
        // Heard before the head is read: a marker set after an empty head was seen arrives as
        // an event. Without pub/sub the markers are just read later, as for any conversation.
        const watching = await this.readMarkers.watch(conversation).then(
          () => true,
          () => false,
        );
        // Assumed empty, the markers are known empty only once its first message is stored
        // as number 1 (messageStored).
        if (assumedEmpty) return true;
        const empty = (await this.store.head(conversation)) === 0;
        if (empty && watching) this.readMarkers.seedEmpty(conversation, [a, b]);
        return empty;
      })(),
      // An inbox count this instance knows (it read or appended it, or created the user) is
      // not read again: the insert verifies it, and a lost race reads it (see addPartners).
      Promise.all(
        owners.map(async (owner) => [owner, this.entryHeads.get(owner) ?? (await this.entryHead(owner))] as const),
      ),
    ]);
    const known = new Map(heads);
    // One owner's appends one at a time (else they race for the same entry number); both
    // owners' locks taken in one order, so two registrations never wait for each other.
    const [first, second] = a < b ? [a, b] : [b, a];
    return {
      write: () =>
        this.inboxQueue.run(first, () => this.inboxQueue.run(second, () => this.addPartners(missing(), fresh, known))),
      assumedEmpty,
    };
  }

  /**
   * Appends `other` to `owner`'s inbox for each pair that is not there yet, both in one write.
   * `known`: inbox entry counts read before (the first attempt numbers from them, or from a
   * newer count this instance learned meanwhile, without another read).
   */
  private async addPartners(
    pairs: Array<[string, string]>,
    fresh: boolean,
    known: ReadonlyMap<string, number>,
  ): Promise<void> {
    if (pairs.length === 0) return;
    const key = ([owner, other]: [string, string]) => `${owner}:${other}`;
    const unmarked = fresh
      ? pairs
      : (
          await Promise.all(pairs.map(async (p) => ((await this.strategy.exists(this.pairs, key(p))) ? null : p)))
        ).filter((p): p is [string, string] => p !== null);
    // Append first, mark second: a crash in between, or two instances racing, can only
    // append a duplicate entry (list() ignores it), never lose the partner.
    let todo = unmarked;
    for (let attempt = 0; todo.length > 0; attempt++) {
      if (attempt > 50) throw new Error(`no free inbox entry for ${todo[0][0]} after ${attempt} attempts`);
      const heads = await Promise.all(
        todo.map(([owner]) => {
          const read = known.get(owner);
          // Numbers known to exist: the larger is, too. After a lost race, read again.
          return attempt === 0 && read !== undefined
            ? Promise.resolve(Math.max(read, this.entryHeads.get(owner) ?? 0))
            : this.entryHead(owner);
        }),
      );
      // Submitted together, so they share one insert.
      const stored = await Promise.all(
        todo.map(async ([owner, other], i) => {
          const n = heads[i] + 1;
          const ok = await this.entryInserts.insert({ _id: entryId(owner, n), owner, with: other, at: new Date() });
          // Stored, or taken by another writer (then take the next one): n exists either way.
          this.entryHeads.set(owner, Math.max(n, this.entryHeads.get(owner) ?? 0));
          return ok;
        }),
      );
      todo = todo.filter((_, i) => !stored[i]);
    }
    // Both inboxes hold the partner now: that is what `conversations` needs once the send is
    // acknowledged. The markers only spare a later registration of the pair (after a restart,
    // or on another instance, of a conversation with messages) from appending an entry again,
    // so the send does not wait for them: a marker written late, or never (a crash, a failed
    // write), costs at most that duplicate entry, which list() ignores. They are still only
    // submitted after their entries are stored, so a marker always means the entry exists.
    for (const p of pairs) this.registered.set(key(p), true);
    // false (already marked) is as good as true.
    void Promise.all(unmarked.map((p) => this.pairInserts.insert({ _id: key(p) }))).catch(() => undefined);
  }

  /** A user just created on this instance: their inbox is empty (a count known without a read). */
  created(userId: string): void {
    if (!this.entryHeads.has(userId)) this.entryHeads.set(userId, 0);
  }

  /** How many inbox entries `owner` has (they are numbered 1..n without gaps). */
  private async entryHead(owner: string): Promise<number> {
    return this.strategy.head(this.entries, entryKeys(owner), this.entryHeads.get(owner) ?? 0);
  }

  /** The ids of `owner`'s conversation partners, each once. */
  private async partnersOf(owner: string): Promise<string[]> {
    const n = await this.entryHead(owner);
    this.entryHeads.set(owner, n);
    const docs: InboxEntryDoc[] = await this.strategy.range(this.entries, entryKeys(owner), 1, n, n);
    return [...new Set(docs.map((d) => d.with))];
  }

  /** The viewer's direct conversations, newest activity first. */
  async list(viewer: UserRecord): Promise<ConversationSummary[]> {
    const partners = await this.partnersOf(viewer.id);
    const found = await Promise.all(partners.map((otherId) => this.summary(viewer.id, otherId)));
    return found
      .filter((c): c is ConversationSummary => c !== null)
      .sort(
        (x, y) =>
          (y.lastMessage?.createdAt.getTime() ?? 0) - (x.lastMessage?.createdAt.getTime() ?? 0) ||
          x.with.username.localeCompare(y.with.username),
      );
  }

  /**
   * One conversation as `viewerId` sees it; null when the other user does not exist.
   * `newest`: a message just stored, used as the last message unless a newer one is known.
   */
  async summary(viewerId: string, otherId: string, newest?: MessageDoc): Promise<ConversationSummary | null> {
    const conversation = directKey(viewerId, otherId);
    const current = newest && newest.seq >= (this.store.knownHead(conversation) ?? 0) ? newest : undefined;
    const [other, head, marker] = await Promise.all([
      this.users.get(otherId),
      current ? current.seq : this.store.head(conversation),
      this.readMarkers.get(viewerId, conversation),
    ]);
    if (!other) return null;
    const latest = current ?? (head > 0 ? await this.store.get(messageId(conversation, head)) : null);
    const shown = !latest || (this.isVisible(latest) && (await this.visibleTo(viewerId, [latest])).length > 0);
    if (!latest || (shown && !latest.expiresAt)) {
      const unreadCount = latest ? Math.max(0, (latest.counts?.[otherId] ?? 0) - (marker?.count ?? 0)) : 0;
      return { with: other, lastMessage: latest, unreadCount };
    }
    const arithmetic = Math.max(0, (latest.counts?.[otherId] ?? 0) - (marker?.count ?? 0));
    return {
      with: other,
      ...(await this.withExpiry(viewerId, conversation, head, otherId, marker?.seq ?? 0, arithmetic)),
    };
  }

  /** The messages of `docs` that exist and that the viewer may see. */
  private async shownTo(viewerId: string, docs: MessageDoc[]): Promise<MessageDoc[]> {
    return this.visibleTo(viewerId, docs.filter(this.isVisible));
  }

  /**
   * lastMessage and unreadCount where messages may have expired (disappearing messages,
   * retention) or may not be the viewer's to see (abuse control): the newest visible message, and the visible messages from the other user
   * after the read marker, counted (for an unread stretch longer than UNREAD_SCAN the stored
   * counts are used, which include expired ones).
   */
  private async withExpiry(
    viewerId: string,
    conversation: string,
    head: number,
    otherId: string,
    markerSeq: number,
    arithmetic: number,
  ): Promise<{ lastMessage: MessageDoc | null; unreadCount: number }> {
    let lastMessage: MessageDoc | null = null;
    let unreadCount = arithmetic;
    const unreadFrom = Math.max(markerSeq + 1, head - UNREAD_SCAN + 1);
    if (unreadFrom <= head) {
      const docs = await this.shownTo(viewerId, await this.store.range(conversation, unreadFrom, head, UNREAD_SCAN));
      lastMessage = docs[docs.length - 1] ?? null;
      if (head - markerSeq <= UNREAD_SCAN) unreadCount = docs.filter((d) => d.sender === otherId).length;
    }
    // Everything unread expired: the newest visible message is further back.
    for (let hi = unreadFrom - 1; !lastMessage && hi > 0 && head - hi < LAST_SCAN; hi -= LAST_BATCH) {
      const docs = await this.store.range(conversation, Math.max(1, hi - LAST_BATCH + 1), hi, LAST_BATCH);
      lastMessage = (await this.shownTo(viewerId, docs)).pop() ?? null;
    }
    return { lastMessage, unreadCount };
  }

  /**
   * Tells `ownerId`'s `conversationUpdated` subscriptions (every tab, every instance) how the
   * conversation with `otherId` looks now. Best effort: the `conversations` query stays the truth.
   */
  async notify(ownerId: string, otherId: string, newest?: MessageDoc): Promise<void> {
    // Most direct messages go to someone without a tab open: nothing to build for them.
    if (!this.mayBeSubscribed(ownerId)) return;
    try {
      const summary = await this.summary(ownerId, otherId, newest);
      if (!summary) return;
      // The summary was built from the message as stored, several awaits ago; an edit or
      // reaction published since would be overwritten in the client's cache by this older
      // state (Apollo normalises Message by id). Take the newest state held, just before
      // publishing.
      const last = summary.lastMessage;
      if (last) summary.lastMessage = this.store.peek(last._id) ?? last;
      const payload: InboxPayload = { ownerId, summary };
      await this.pubsub.publish(inboxTopic(ownerId), payload);
    } catch {
      // A client that missed this sees the change at its next `conversations` query.
    }
  }

  /** After a direct message was stored: both participants' lists change. */
  messageStored(message: MessageDoc): void {
    if (!message.recipient) return;
    // Number 1 was free, so the conversation had no message, hence no read marker, when this
    // one was drafted: a marker set since needs this message, so a watch live since before
    // then (preparePair's) hears it. A conversation assumed empty learns it here, before its
    // pushes are built.
    if (message.seq === 1) {
      this.readMarkers.seedEmpty(
        message.conversation,
        [message.sender, message.recipient],
        message.createdAt.getTime(),
      );
    }
    void this.notify(message.sender, message.recipient, message);
    void this.notify(message.recipient, message.sender, message);
  }

  /**
   * Marks the direct messages from `other` to `viewer` up to and including `upTo` as read;
   * returns how many changed. Calls for one reader and conversation run one at a time.
   */
  async markRead(viewer: UserRecord, other: UserRecord, upTo: string): Promise<number> {
    const conversation = directKey(viewer.id, other.id);
    const parsed = typeof upTo === 'string' ? parseMessageId(upTo) : null;
    if (!parsed || parsed.conversation !== conversation) {
      throw new BadUserInputError('upTo is not a message of this conversation', 'upTo');
    }
    const markerId = `${viewer.id}:${conversation}`;
    return this.readQueue.run(markerId, async () => {
      const upDoc = await this.store.get(upTo);
      if (!upDoc) throw new BadUserInputError('upTo is not a known message', 'upTo');
      const marker = await this.strategy.findById(this.markers, markerId);
      const from = (marker?.seq ?? 0) + 1;
      if (upDoc.seq < from) return 0;
      const at = new Date();
      let changed = 0;
      for (let lo = from; lo <= upDoc.seq; lo += MARK_BATCH) {
        const docs = await this.store.range(conversation, lo, Math.min(upDoc.seq, lo + MARK_BATCH - 1), MARK_BATCH);
        const unread = docs.filter((d) => d.sender === other.id && d.readAt === null);
        if (unread.length === 0) continue;
        changed += await this.store.markRead(
          unread.map((d) => d._id),
          at,
        );
      }
      this.store.recent.noteRead(conversation, { readerId: viewer.id, upToSeq: upDoc.seq, at });
      const count = upDoc.counts?.[other.id] ?? 0;
      await upsertWithRetry(() =>
        this.markers.replaceOne({ _id: markerId }, { _id: markerId, seq: upDoc.seq, count, at }, { upsert: true }),
      );
      this.readMarkers.note(viewer.id, conversation, { seq: upDoc.seq, count });
      const payload: ReadPayload = {
        conversation,
        reader: viewer,
        upTo: { ...upDoc, readAt: upDoc.sender === other.id ? (upDoc.readAt ?? at) : upDoc.readAt },
        count: changed,
        at,
      };
      await this.pubsub.publish(readTopic(conversation), payload).catch(() => undefined);
      if (changed > 0) void this.notify(viewer.id, other.id);
      return changed;
    });
  }
}
