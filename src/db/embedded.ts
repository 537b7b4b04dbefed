/**
 * The embedded database for `npm start` without MONGODB_URI, and for the tests: FerretDB
 * (MongoDB wire protocol on SQLite) as a child process, built on demand with Go; where Go
 * is absent, mongodb-memory-server with its data kept on disk.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface EmbeddedDatabase {
  kind: 'ferretdb' | 'mongodb-memory-server';
  /** mongodb:// URI including the database name. */
  uri: string;
  dataDir: string;
  stop(): Promise<void>;
  /** The child process (FerretDB only): tests kill it to simulate an outage. */
  process?: ChildProcess;
}

export interface EmbeddedOptions {
  /** Directory for the database files; created if missing. */
  dataDir: string;
  /** Database name inside the server. Default `anonymo`. */
  dbName?: string;
  /**
   * mongodb-memory-server only: its port (0 or unset picks a free one). FerretDB listens on a
   * unix socket in the data folder instead, never on TCP.
   */
  port?: number;
  /** FerretDB binary; default `.tools/bin/ferretdb`, built by scripts/build-ferretdb.sh if missing. */
  ferretdbBin?: string;
  /** Build the binary if it is missing (default true). */
  build?: boolean;
  /**
   * FerretDB/SQLite only: `synchronous` in WAL mode (default `normal`: a commit is written to the
   * WAL without waiting for the disk, so it survives any process crash; `full` waits for the disk,
   * which the purge's one-document replacements and first DMs pay ~3x for).
   */
  synchronous?: 'normal' | 'full';
  log?: (msg: string) => void;
}

const ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_FERRETDB_BIN = path.join(ROOT, '.tools', 'bin', 'ferretdb');

function hasGo(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

/** Builds .tools/bin/ferretdb when missing or stale; returns false when Go is not installed. */
export function ensureFerretDB(log: (msg: string) => void = () => {}): boolean {
  if (!hasGo()) return existsSync(DEFAULT_FERRETDB_BIN);
  const script = path.join(ROOT, 'scripts', 'build-ferretdb.sh');
  log('checking the FerretDB build (scripts/build-ferretdb.sh)');
  const r = spawnSync('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`scripts/build-ferretdb.sh failed with exit code ${r.status}`);
  return true;
}

/**
 * Makes the data folder private: 0700, and its files 0600 (folders made by older versions
 * were 0755 with 0644 files, readable by every local user).
 */
export function makePrivate(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  for (const name of readdirSync(dataDir)) {
    const file = path.join(dataDir, name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (st?.isFile()) chmodSync(file, 0o600);
  }
}

/** Longest unix socket path the kernel accepts, less a margin (sun_path is 108 bytes on Linux). */
const MAX_SOCKET_PATH = 100;

/**
 * Where FerretDB's socket goes: in the (private) data folder, or, when that path is too long
 * for a socket, in a new private temporary folder.
 */
function socketPath(dataDir: string): string {
  const inData = path.join(dataDir, 'ferretdb.sock');
  if (Buffer.byteLength(inData) <= MAX_SOCKET_PATH) return inData;
  return path.join(mkdtempSync(path.join(tmpdir(), 'anonymo-db-')), 'ferretdb.sock');
}

/**
 * Starts FerretDB on `dataDir`, resolving once it accepts connections. It listens on a unix
 * socket inside the private data folder, not on TCP: it has no authentication, so only this
 * user may reach it.
 */
export async function startFerretDB(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const bin = opts.ferretdbBin ?? DEFAULT_FERRETDB_BIN;
  const dataDir = path.resolve(opts.dataDir);
  makePrivate(dataDir);
  const lock = takeLock(dataDir);
  const socket = socketPath(dataDir);
  // Left behind by a FerretDB that was killed; the lock says no live one uses it.
  rmSync(socket, { force: true });
  const child = spawn(
    bin,
    [
      '--listen-addr=',
      `--listen-unix=${socket}`,
      `--sqlite-url=file:${dataDir}/?_pragma=${encodeURIComponent(`synchronous(${opts.synchronous ?? 'normal'})`)}`,
      '--log-level=error',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`FerretDB did not start within 15 s: ${stderr}`)), 15000);
    rl.on('line', (line) => {
      const m = /^READY (mongodb:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`FerretDB exited with code ${code}: ${stderr}`));
    });
  }).catch((err) => {
    lock.release();
    child.kill('SIGKILL');
    throw err;
  });
  // The driver takes a socket path as the host, percent-encoded.
  const uri = `mongodb://${encodeURIComponent(socket)}/${opts.dbName ?? 'anonymo'}`;
  return {
    kind: 'ferretdb',
    uri,
    dataDir,
    process: child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      lock.release();
      if (path.dirname(socket) !== dataDir) rmSync(path.dirname(socket), { recursive: true, force: true });
    },
  };
}

/** A pid file so two servers never open the same SQLite files through two FerretDBs. */
function takeLock(dataDir: string): { release(): void } {
  const file = path.join(dataDir, 'anonymo.lock');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new Error(`${dataDir} is in use by another Anonymo server (pid ${pid})`);
    }
  }
  writeFileSync(file, String(process.pid), { mode: 0o600 });
  return {
    release: () => {
      try {
        if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file);
      } catch {
        // already gone
      }
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts mongodb-memory-server (downloads mongod on first use; needs internet). */
async function startMemoryServer(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  let MongoMemoryServer: typeof import('mongodb-memory-server-core').MongoMemoryServer;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ({ MongoMemoryServer } = require('mongodb-memory-server-core') as typeof import('mongodb-memory-server-core'));
  } catch {
    throw new Error(
      'No embedded database available: Go is not installed (for FerretDB) and the optional ' +
        'package mongodb-memory-server-core is missing. Install Go, run `npm install`, or set MONGODB_URI.',
    );
  }
  const dbPath = path.resolve(opts.dataDir, 'mongodb');
  makePrivate(path.resolve(opts.dataDir));
  mkdirSync(dbPath, { recursive: true, mode: 0o700 });
  const server = await MongoMemoryServer.create({
    instance: { dbPath, storageEngine: 'wiredTiger', port: opts.port || undefined },
  });
  return {
    kind: 'mongodb-memory-server',
    uri: server.getUri(opts.dbName ?? 'anonymo'),
    dataDir: dbPath,
    stop: async () => {
      await server.stop({ doCleanup: false });
    },
  };
}

/** FerretDB where Go (or a built binary) is available, else mongodb-memory-server. */
export async function startEmbeddedDatabase(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = opts.log ?? (() => {});
  const haveFerret =
    opts.ferretdbBin !== undefined
      ? existsSync(opts.ferretdbBin)
      : opts.build === false
        ? existsSync(DEFAULT_FERRETDB_BIN)
        : ensureFerretDB(log);
  if (haveFerret) return startFerretDB(opts);
  log('Go is not installed: using mongodb-memory-server instead of FerretDB');
  return startMemoryServer(opts);
}
