/**
 * Connection churn: one server process per mode, `rounds` rounds of `subscribers` sockets
 * connecting, subscribing, receiving traffic at a fixed rate, then all closing. Measures the
 * server's RSS under traffic in each round (the peak sampled every 100 ms) and once idle
 * after the sockets left: memory that does not come back between rounds is a leak, retained
 * caches or fragmentation. Baselines run the same rounds in the same run.
 */
import type { Options } from './run';
import {
  identities,
  idleRss,
  isBaseline,
  protocolOf,
  ratePhase,
  sender,
  startTarget,
  subscriptionsActive,
  untilAllSubscribed,
  Workers,
  type Mode,
} from './harness';
import { cpuSeconds, nowMs, rssBytes, sleep } from './stats';

export interface ChurnRound {
  open: number;
  /** Highest RSS sampled while messages flowed to every socket of the round. */
  rssUnderTrafficMiB: number;
  /** RSS once the round's sockets closed and the server was garbage-collected. */
  rssIdleAfterMiB: number;
  p99Ms: number;
  /** Server CPU per delivery over the round's traffic phase. */
  cpuUsPerDelivery: number;
}

export interface ChurnResult {
  mode: Mode;
  subscribers: number;
  rounds: ChurnRound[];
  notes: string[];
}

const MiB = 2 ** 20;

/** Waits until the server no longer counts the dropped sockets' subscriptions (Anonymo only). */
async function untilDetached(target: Awaited<ReturnType<typeof startTarget>>): Promise<void> {
  if (isBaseline(target.mode)) {
    await sleep(1000);
    return;
  }
  const deadline = nowMs() + 60000;
  while ((await subscriptionsActive(target)) > 0) {
    if (nowMs() > deadline) throw new Error('subscriptions still active 60 s after every socket closed');
    await sleep(200);
  }
}

export async function runChurn(
  opts: Options,
  mode: Mode,
  subscribers: number,
  mongoBase: string,
): Promise<ChurnResult> {
  const notes: string[] = [];
  const target = await startTarget(mode, mongoBase, subscribers, opts.server, opts.profile);
  const workers = new Workers(opts.workers);
  try {
    const cookies = isBaseline(mode) ? [] : await identities(target.http, opts.identities);
    const send = sender(target, cookies[0]);
    let k = 0;
    const next = () => k++;
    const rounds: ChurnRound[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const conn = await workers.connect(target.ws, protocolOf(mode), cookies, subscribers);
      if (conn.failed) notes.push(`round ${r + 1}: ${conn.failed} connections failed (${conn.firstError})`);
      await untilAllSubscribed(workers, send, next);
      let peak = 0;
      const cpu0 = cpuSeconds(target.pid);
      const rate = opts.rates[0] ?? 2;
      const result = await ratePhase(
        workers,
        send,
        next,
        { rate, seconds: opts.duration, open: conn.open },
        notes,
        () => (peak = Math.max(peak, rssBytes(target.pid))),
      );
      const cpu = cpuSeconds(target.pid) - cpu0;
      await workers.drop();
      await untilDetached(target);
      const idle = await idleRss(target.pid);
      rounds.push({
        open: conn.open,
        rssUnderTrafficMiB: peak / MiB,
        rssIdleAfterMiB: idle / MiB,
        p99Ms: result.p99Ms,
        cpuUsPerDelivery: (cpu / Math.max(1, result.delivered)) * 1e6,
      });
      process.stdout.write(
        `  round ${r + 1}: ${conn.open} sockets, RSS ${(peak / MiB).toFixed(0)} MiB under traffic, ` +
          `${(idle / MiB).toFixed(0)} MiB idle after they left, p99 ${result.p99Ms.toFixed(1)} ms\n`,
      );
    }
    return { mode, subscribers, rounds, notes };
  } finally {
    await workers.close();
    await target.stop();
  }
}

const f = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));

/** Markdown: RSS per round and mode, and the last round against the first. */
export function churnTable(results: ChurnResult[]): string {
  if (!results.length) return '';
  const rounds = Math.max(...results.map((r) => r.rounds.length));
  const head = Array.from({ length: rounds }, (_, i) => `round ${i + 1}`);
  const lines = [
    `Connection churn: ${results[0].subscribers} sockets per round, RSS under traffic (idle after the round's sockets left), MiB:`,
    '',
    `| mode | ${head.join(' | ')} | last ÷ first | × Socket.IO (round 1 / last) |`,
    `|---|${head.map(() => '---:').join('|')}|---:|---:|`,
  ];
  const sio = results.find((r) => r.mode === 'socketio');
  for (const c of results) {
    const first = c.rounds[0];
    const last = c.rounds.at(-1);
    const vsSio = (i: number) =>
      sio?.rounds[i] && c.rounds[i]
        ? (c.rounds[i].rssUnderTrafficMiB / sio.rounds[i].rssUnderTrafficMiB).toFixed(2)
        : '–';
    lines.push(
      `| ${c.mode} | ${c.rounds.map((r) => `${f(r.rssUnderTrafficMiB)} (${f(r.rssIdleAfterMiB)})`).join(' | ')} | ` +
        `${first && last ? (last.rssUnderTrafficMiB / first.rssUnderTrafficMiB).toFixed(2) : '–'} | ` +
        `${vsSio(0)} / ${vsSio(c.rounds.length - 1)} |`,
    );
  }
  return lines.join('\n');
}
