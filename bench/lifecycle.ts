/**
 * `npm run bench -- --lifecycle`: message-lifecycle numbers (issue 11, docs/LIFECYCLE.md).
 *
 * 1. Reactions under load: one grouped server, `--lifecycle-subscribers` lobby subscribers of
 *    `messageUpdated { id updateCursor reactions { emoji count mine } }` (load-generator workers,
 *    sockets on the reactors' identities round-robin, so `mine` differs between viewers), then
 *    `--lifecycle-reactors` users send `react(id, "👍", on: true)` to the same lobby message at
 *    once. Measured: wall time until every mutation returned, their latency, the final count read
 *    back with `messages(last: 5)` (must be exactly the number of reactors), the updates the
 *    server published (the lobby's update cursor before and after) and the update frames the
 *    subscribers received, per second from the first mutation to the last frame. Then the same
 *    with `on: false` (final count 0: the reaction is gone).
 * 2. Purge cost: `--lifecycle-expired` already-expired lobby messages (`expiresAt` an hour ago,
 *    as disappearing messages leave them) are inserted straight into a fresh database, then a
 *    server is started on it with PURGE_INTERVAL_MS=10000 while a sender posts to the lobby at
 *    PURGE_SEND_RATE msg/s. Measured: time from the first purged batch seen to none of the seeded
 *    messages left unpurged (countDocuments polled directly on FerretDB), the server's database
 *    commands meanwhile (anonymo_db_commands_total, by command) minus what the sender's messages
 *    cost before the purge started, and the sender's latency before and during the purge.
 *    The purge replaces each message with a position stub (docs/LIFECYCLE.md, "Why stubs"): a
 *    seeded message counts as gone when it has `purgedAt` and no text.
 */
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { identities, sender, startTarget, subscriptionsActive, withTimeout, Workers, type Target } from './harness';
import { nowMs, quantile, sleep } from './stats';

export interface LifecycleOptions {
  server: string;
  profile?: string;
  workers: number;
  /** messageUpdated subscribers in the lobby. */
  subscribers: number;
  /** Users reacting at once. */
  reactors: number;
  /** Expired messages seeded for the purge; 0 skips the purge phase. */
  expired: number;
}

export interface ReactionRound {
  on: boolean;
  reactors: number;
  errors: number;
  /** From the first mutation sent to the last one answered. */
  wallMs: number;
  p50Ms: number;
  p99Ms: number;
  /** The emoji's count read back with messages(last: 5) afterwards (0 when the reaction is gone). */
  finalCount: number;
  exact: boolean;
  /** Updates the server published on the lobby's update sequence for this round. */
  updates: number;
  /** Update frames the subscribers received, and how many were expected (updates × subscribers). */
  frames: number;
  expectedFrames: number;
  /** From the first mutation sent to the last frame received. */
  deliverySeconds: number;
  framesPerSec: number;
}

export interface PurgeResult {
  expired: number;
  /** False when seeded messages were still unpurged at the deadline (see notes). */
  finished: boolean;
  /** Seeded messages still unpurged at the end (null: the count did not answer). */
  left: number | null;
  seedSeconds: number;
  purgeIntervalMs: number;
  /** From the first purged batch seen to none left (polls every ~200 ms plus the count's own time). */
  purgeSeconds: number;
  /** From the server reporting ready to none left. */
  sinceReadySeconds: number;
  messagesPerSec: number;
  /** anonymo_db_commands_total of the server during purgeSeconds, by command, and in all. */
  commands: Record<string, number>;
  commandsTotal: number;
  /** commandsTotal minus the sender's messages × its commands per message before the purge. */
  purgeCommands: number;
  purgeCommandsPer1000: number;
  sendRate: number;
  sentDuring: number;
  sendErrors: number;
  sendP50MsBefore: number;
  sendP99MsBefore: number;
  sendP50MsDuring: number;
  sendP99MsDuring: number;
}

export interface LifecycleResult {
  subscribers: number;
  reactions: ReactionRound[];
  purge?: PurgeResult;
  notes: string[];
}

const EMOJI = '👍';
const UPDATES = 'subscription Updates { messageUpdated { id updateCursor reactions { emoji count mine } } }';
const REACT =
  'mutation React($id: ID!, $emoji: String!, $on: Boolean!) { react(id: $id, emoji: $emoji, on: $on) { id } }';
const LAST = '{ messages(last: 5) { edges { node { id reactions { emoji count } } } } }';
export const PURGE_INTERVAL_MS = 10000;
export const PURGE_SEND_RATE = 3;
/** How long the purge phase waits for the purge to start, and then to finish, before reporting what it has. */
export const PURGE_DEADLINE_MS = 300000;

async function gql<T>(target: Target, cookie: string, query: string, variables: Record<string, unknown> = {}) {
  const r = await fetch(target.http, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ query, variables }),
  });
  const json = (await r.json()) as { data?: T; errors?: unknown[] };
  if (!r.ok || json.errors) throw new Error(`request failed: ${r.status} ${JSON.stringify(json.errors)}`);
  return json.data!;
}

/** The number behind an update cursor (base64url of `u<n>`, src/lifecycle/update-log.ts). */
function updateNumber(cursor: string): number {
  const m = /^u(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) throw new Error(`unexpected update cursor ${cursor}`);
  return Number(m[1]);
}

async function commandsByName(target: Target): Promise<Record<string, number>> {
  const text = await (await fetch(target.metrics!)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^anonymo_db_commands_total\{command="([^"]*)"\} (\S+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

const diff = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(
    Object.keys(b)
      .map((k) => [k, b[k] - (a[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function runReactions(
  opts: LifecycleOptions,
  mongoBase: string,
  notes: string[],
): Promise<{ subscribers: number; reactions: ReactionRound[] }> {
  const target = await startTarget('grouped', mongoBase, opts.subscribers, opts.server, opts.profile);
  const workers = new Workers(opts.workers);
  try {
    const [author, ...reactors] = await identities(target.http, opts.reactors + 1);
    const id = (
      await gql<{ sendMessage: { id: string } }>(
        target,
        author,
        'mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }',
        { input: { text: 'react to this' } },
      )
    ).sendMessage.id;
    const conn = await workers.connect(target.ws, 'graphql', reactors, opts.subscribers, UPDATES);
    if (conn.failed) notes.push(`${conn.failed} connections failed (${conn.firstError})`);
    const deadline = nowMs() + 60000;
    while ((await subscriptionsActive(target)) < conn.open) {
      if (nowMs() > deadline) throw new Error('messageUpdated subscriptions did not all attach within 60 s');
      await sleep(200);
    }
    process.stdout.write(`  ${conn.open} messageUpdated subscribers, ${reactors.length} reactors\n`);
    const cursor = async () =>
      updateNumber(
        (await gql<{ messageUpdatesCursor: string }>(target, author, '{ messageUpdatesCursor }')).messageUpdatesCursor,
      );

    const rounds: ReactionRound[] = [];
    for (const on of [true, false]) {
      await sleep(500);
      const u0 = await cursor();
      const f0 = (await workers.report()).unexpected;
      const latencies: number[] = [];
      let errors = 0;
      const t0 = nowMs();
      await Promise.all(
        reactors.map(async (cookie) => {
          const s = nowMs();
          try {
            await gql(target, cookie, REACT, { id, emoji: EMOJI, on });
            latencies.push(nowMs() - s);
          } catch (err) {
            if (!errors++) notes.push(`react(on: ${on}): ${String(err)}`);
          }
        }),
      );
      const wallMs = nowMs() - t0;
      const updates = (await cursor()) - u0;
      const expectedFrames = updates * conn.open;
      // Wait for the frames: every expected one, or 3 s without a new one.
      let rep = await workers.report();
      let seen = rep.unexpected - f0;
      let lastChange = nowMs();
      while (seen < expectedFrames && nowMs() - lastChange < 3000) {
        await sleep(100);
        rep = await workers.report();
        if (rep.unexpected - f0 !== seen) lastChange = nowMs();
        seen = rep.unexpected - f0;
      }
      if (seen !== expectedFrames) notes.push(`react(on: ${on}): ${seen} update frames, expected ${expectedFrames}`);
      const page = await gql<{
        messages: { edges: Array<{ node: { id: string; reactions: Array<{ emoji: string; count: number }> } }> };
      }>(target, author, LAST);
      const node = page.messages.edges.find((e) => e.node.id === id)?.node;
      if (!node) notes.push(`react(on: ${on}): the message is not among messages(last: 5)`);
      const finalCount = node?.reactions.find((r) => r.emoji === EMOJI)?.count ?? 0;
      const deliverySeconds = (rep.lastFrameAt - t0) / 1000;
      const round: ReactionRound = {
        on,
        reactors: reactors.length,
        errors,
        wallMs,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        finalCount,
        exact: finalCount === (on ? reactors.length : 0),
        updates,
        frames: seen,
        expectedFrames,
        deliverySeconds,
        framesPerSec: deliverySeconds > 0 ? seen / deliverySeconds : NaN,
      };
      rounds.push(round);
      process.stdout.write(
        `  on: ${on}: ${reactors.length} reacts in ${wallMs.toFixed(0)} ms (p99 ${round.p99Ms.toFixed(0)} ms), ` +
          `count ${finalCount}${round.exact ? ' (exact)' : ' (WRONG)'}, ${updates} updates, ` +
          `${seen}/${expectedFrames} frames in ${deliverySeconds.toFixed(2)} s = ${Math.round(round.framesPerSec)}/s\n`,
      );
    }
    const rep = await workers.report();
    if (rep.closed) notes.push(`${rep.closed} sockets were closed by the server`);
    return { subscribers: conn.open, reactions: rounds };
  } finally {
    await workers.close();
    await target.stop();
  }
}

async function runPurge(opts: LifecycleOptions, mongoBase: string, notes: string[]): Promise<PurgeResult> {
  const dbName = `bench_purge_${randomBytes(3).toString('hex')}`;
  // Seeded from a client of its own, closed before the server starts; the counts use another.
  const seeder = await MongoClient.connect(`${mongoBase}${dbName}`);
  let mongo: MongoClient | undefined;
  try {
    const seeded = seeder.db(dbName).collection('messages');
    const n = opts.expired;
    const createdAt = new Date(Date.now() - 2 * 3600_000);
    const expiresAt = new Date(Date.now() - 3600_000);
    const senderId = randomBytes(12).toString('hex');
    const t = nowMs();
    // The lobby's first n messages, stored as MessageService.send stores them (src/messages/message.model.ts,
    // src/lifecycle/purge.job.ts),
    // sent two hours ago with a TTL of one hour: what the purge removes. The live messages follow as n+1, ...
    for (let done = 0; done < n;) {
      const batch = Math.min(10000, n - done);
      const docs = Array.from({ length: batch }, (_, i) => {
        const seq = done + i + 1;
        return {
          _id: `lobby:${String(seq).padStart(12, '0')}`,
          conversation: 'lobby',
          seq,
          text: `expired ${seq}`,
          sender: senderId,
          recipient: null,
          clientId: null,
          createdAt,
          readAt: null,
          expiresAt,
        };
      });
      await seeded.insertMany(docs as never[], { ordered: false });
      // And each in the purge's log of what will expire, which the send path writes first.
      await seeder
        .db(dbName)
        .collection('message_expiries')
        .insertMany(docs.map((d) => ({ _id: d._id, at: expiresAt })) as never[], { ordered: false });
      done += batch;
    }
    // A database written by this version: its log is complete (no one-time scan at start).
    await seeder
      .db(dbName)
      .collection('message_expiries')
      .insertOne({ _id: '~migrated', at: new Date(8_640_000_000_000_000) } as never);
    const seedSeconds = (nowMs() - t) / 1000;
    process.stdout.write(`  ${n} expired lobby messages seeded in ${seedSeconds.toFixed(1)} s\n`);
    await seeder.close();
    mongo = await MongoClient.connect(`${mongoBase}${dbName}`);
    const coll = mongo.db(dbName).collection('messages');
    const left = () => coll.countDocuments({ seq: { $lte: n }, purgedAt: { $exists: false } });

    const target = await startTarget('grouped', mongoBase, 10, opts.server, opts.profile, {
      MONGODB_URI: `${mongoBase}${dbName}`,
      PURGE_INTERVAL_MS: String(PURGE_INTERVAL_MS),
    });
    const ready = nowMs();
    try {
      const [cookie] = await identities(target.http, 1);
      const send = sender(target, cookie);
      // The chat: PURGE_SEND_RATE msg/s to the lobby until the purge is over.
      const sends: Array<{ at: number; ms: number }> = [];
      let sendErrors = 0;
      let chatting = true;
      const chat = (async () => {
        const start = nowMs();
        for (let k = 0; chatting; k++) {
          const wait = start + (k * 1000) / PURGE_SEND_RATE - nowMs();
          if (wait > 0) await sleep(wait);
          const s = nowMs();
          send(k).then(
            () => sends.push({ at: s, ms: nowMs() - s }),
            (err) => void (sendErrors++ || notes.push(`purge sender: ${String(err)}`)),
          );
        }
      })();
      const c0 = await commandsByName(target);
      const sent0 = sends.length;
      // Before the purge: what the chat alone costs.
      // A count that does not answer (FerretDB busy) is retried until the deadline.
      const poll = async (): Promise<number | undefined> => {
        const c = await withTimeout(left(), 30000);
        return c === 'timeout' ? undefined : c;
      };
      let count = await poll();
      while (count === undefined || count === n) {
        if (nowMs() - ready > PURGE_INTERVAL_MS + PURGE_DEADLINE_MS) break;
        await sleep(200);
        count = await poll();
      }
      if (count === undefined || count === n) notes.push('purge: no purged batch seen before the deadline');
      const start = nowMs();
      const c1 = await commandsByName(target);
      const sent1 = sends.length;
      while (count === undefined || (count > 0 && count < n)) {
        if (nowMs() - start > PURGE_DEADLINE_MS) break;
        await sleep(200);
        count = await poll();
      }
      const finished = count === 0;
      if (!finished)
        notes.push(
          `purge: ${count ?? 'an unknown number (the count did not answer)'} of ${n} still unpurged ` +
            `${((nowMs() - ready) / 1000).toFixed(0)} s after the server was ready; the figures cover the time until then`,
        );
      const end = nowMs();
      const c2 = await commandsByName(target);
      chatting = false;
      await chat;
      await sleep(1000);
      const before = sends.filter((s) => s.at < start).map((s) => s.ms);
      const during = sends.filter((s) => s.at >= start && s.at <= end).map((s) => s.ms);
      const chatPerMessage = sent1 > sent0 ? sum(diff(c0, c1)) / (sent1 - sent0) : NaN;
      const commands = diff(c1, c2);
      const commandsTotal = sum(commands);
      const purgeCommands = commandsTotal - (Number.isFinite(chatPerMessage) ? chatPerMessage * during.length : 0);
      const purgeSeconds = (end - start) / 1000;
      // Every seeded message is a stub now: no text, sender or expired content left.
      const withText = finished
        ? await withTimeout(coll.countDocuments({ seq: { $lte: n }, text: { $exists: true } }), 30000)
        : 0;
      if (withText) notes.push(`purge: ${withText} seeded messages still hold text`);
      const result: PurgeResult = {
        expired: n,
        finished,
        left: count ?? null,
        seedSeconds,
        purgeIntervalMs: PURGE_INTERVAL_MS,
        purgeSeconds,
        sinceReadySeconds: (end - ready) / 1000,
        messagesPerSec: (n - (count ?? n)) / purgeSeconds,
        commands,
        commandsTotal,
        purgeCommands,
        purgeCommandsPer1000: (purgeCommands / n) * 1000,
        sendRate: PURGE_SEND_RATE,
        sentDuring: during.length,
        sendErrors,
        sendP50MsBefore: quantile(before, 0.5),
        sendP99MsBefore: quantile(before, 0.99),
        sendP50MsDuring: quantile(during, 0.5),
        sendP99MsDuring: quantile(during, 0.99),
      };
      if (Number.isNaN(chatPerMessage)) notes.push('purge: no message sent before the purge started');
      process.stdout.write(
        `  purged ${n} in ${purgeSeconds.toFixed(1)} s (${Math.round(result.messagesPerSec)}/s), ` +
          `${commandsTotal} DB commands (${JSON.stringify(commands)}), ~${Math.round(purgeCommands)} the purge's; ` +
          `send p99 ${result.sendP99MsBefore.toFixed(1)} ms before, ${result.sendP99MsDuring.toFixed(1)} ms during\n`,
      );
      return result;
    } finally {
      await target.stop();
    }
  } finally {
    await seeder.close();
    await mongo?.close();
  }
}

export async function runLifecycle(opts: LifecycleOptions, mongoBase: string): Promise<LifecycleResult> {
  const notes: string[] = [];
  const reactions = await runReactions(opts, mongoBase, notes);
  const purge = opts.expired > 0 ? await withTimeout(runPurge(opts, mongoBase, notes), 900000) : undefined;
  if (purge === 'timeout') throw new Error('purge phase took over 15 minutes');
  return { ...reactions, purge, notes };
}

const f = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));

export function lifecycleTable(r: LifecycleResult): string {
  const lines = [
    `Reactions: ${r.reactions[0]?.reactors ?? '–'} users reacting to one lobby message at once, ${r.subscribers} messageUpdated subscribers (grouped):`,
    '',
    '| react | wall time, all answered | p50 | p99 | final count | updates published | frames received / expected | update deliveries/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...r.reactions.map(
      (x) =>
        `| on: ${x.on} | ${f(x.wallMs)} ms | ${f(x.p50Ms)} ms | ${f(x.p99Ms)} ms | ${x.finalCount}${x.exact ? ' (exact)' : ' (WRONG)'} | ${x.updates} | ${x.frames} / ${x.expectedFrames} | ${f(x.framesPerSec)} |`,
    ),
  ];
  if (r.purge) {
    const p = r.purge;
    lines.push(
      '',
      `Purge: ${p.expired} expired lobby messages, PURGE_INTERVAL_MS=${p.purgeIntervalMs}, the chat sending ${p.sendRate} msg/s meanwhile:`,
      '',
      '| purge time | finished | messages/s | sends failed | DB commands (in all; ≈ the purge’s, per 1000 messages) | by command | send p50 / p99 before | during |',
      '|---:|---|---:|---:|---:|---|---:|---:|',
      `| ${f(p.purgeSeconds, 1)} s | ${p.finished ? 'yes' : `no, ${p.left ?? '?'} left`} | ${f(p.messagesPerSec)} | ${p.sendErrors} | ${p.commandsTotal} (~${f(p.purgeCommands)}, ${f(p.purgeCommandsPer1000, 1)}) | ${Object.entries(
        p.commands,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(
          ', ',
        )} | ${f(p.sendP50MsBefore, 1)} / ${f(p.sendP99MsBefore, 1)} ms | ${f(p.sendP50MsDuring, 1)} / ${f(p.sendP99MsDuring, 1)} ms |`,
    );
  }
  return lines.join('\n');
}
