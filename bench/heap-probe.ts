/**
 * Where an idle subscribed connection's memory goes: starts one grouped server, connects
 * `--subscribers` lobby subscribers in two halves (as bench/run.ts does), and after each half
 * reads the server's RSS (after forced GC), its smaps_rollup and, with `--snapshots DIR`, a
 * heap snapshot (`--heapsnapshot-signal`). bench/heap-diff.ts compares two snapshots by
 * constructor. Usage:
 *   node dist/.bench/bench/heap-probe.js --subscribers 2000 [--snapshots /tmp/snaps]
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startFerretDB } from '../src/db/embedded';
import {
  ROOT,
  Workers,
  identities,
  idleRss,
  protocolOf,
  sender,
  startTarget,
  untilAllSubscribed,
  type Mode,
} from './harness';
import { sleep } from './stats';

function smaps(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

async function snapshot(pid: number, dir: string, tag: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR1');
  for (;;) {
    await sleep(500);
    const fresh = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (fresh.length) {
      // Written once the process is responsive again: wait until its size stops changing.
      const file = path.join(dir, fresh[0]);
      let size = -1;
      for (;;) {
        const s = readFileSync(file).length;
        if (s === size && s > 0) break;
        size = s;
        await sleep(1000);
      }
      console.log(`  snapshot ${tag}: ${file}`);
      return file;
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      subscribers: { type: 'string', default: '2000' },
      snapshots: { type: 'string' },
      identities: { type: 'string', default: '50' },
      mode: { type: 'string', default: 'grouped' },
    },
  });
  const n = Number(values.subscribers);
  const mode = values.mode as Mode;
  const snapDir = values.snapshots;
  if (snapDir) mkdirSync(snapDir, { recursive: true });
  const ferret = await startFerretDB({
    dataDir: mkdtempSync(path.join(tmpdir(), 'anonymo-probe-db-')),
    dbName: 'unused',
    ferretdbBin: path.join(ROOT, '.tools', 'bin', 'ferretdb'),
  });
  const mongoBase = ferret.uri.replace(/unused$/, '');
  const env: Record<string, string> = snapDir
    ? { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR1 --diagnostic-dir=${snapDir}` }
    : {};
  const target = await startTarget(mode, mongoBase, n, path.join(ROOT, 'dist', 'main.js'), undefined, env);
  const workers = new Workers(2);
  try {
    const cookies = mode === 'raw' ? [] : await identities(target.http, Number(values.identities));
    const send = sender(target, cookies[0]);
    let k = 0;
    const next = () => k++;
    if (mode !== 'raw') for (let i = 0; i < 5; i++) await send(next());
    const half = Math.floor(n / 2);
    const a = await workers.connect(target.ws, protocolOf(mode), cookies, half);
    await untilAllSubscribed(workers, send, next);
    const rssA = await idleRss(target.pid);
    const smA = smaps(target.pid);
    if (snapDir) await snapshot(target.pid, snapDir, 'half');
    const b = await workers.connect(target.ws, protocolOf(mode), cookies, n - half);
    await untilAllSubscribed(workers, send, next);
    // After a snapshot the heap holds its garbage: collect it before reading RSS.
    const rssB = await idleRss(target.pid);
    const smB = smaps(target.pid);
    if (snapDir) await snapshot(target.pid, snapDir, 'full');
    const conns = b.open - a.open;
    console.log(`open ${a.open} + ${b.open} (failed ${a.failed + b.failed})`);
    console.log(`RSS per connection (second half): ${((rssB - rssA) / conns / 1024).toFixed(2)} KiB`);
    for (const key of ['Rss', 'Anonymous', 'Private_Dirty', 'Private_Clean', 'Shared_Clean']) {
      console.log(`  ${key}: ${(((smB[key] ?? 0) - (smA[key] ?? 0)) / conns).toFixed(2)} KiB/conn`);
    }
  } finally {
    await workers.close();
    await target.stop();
    await ferret.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
