/**
 * The embedded FerretDB has no authentication, so the operating system must keep other local
 * users out (issue 15, finding 9): a private data folder, private files, and a unix socket
 * inside that folder instead of a TCP port.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFerretDB, type EmbeddedDatabase } from '../../src/db/embedded';
import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { startServer } from '../helpers/server';

const mode = (file: string) => statSync(file).mode & 0o777;
const NOBODY = 65534;

let dataDir: string;
let db: EmbeddedDatabase;
beforeAll(async () => {
  const parent = mkdtempSync(path.join(tmpdir(), 'anonymo-embedded-'));
  chmodSync(parent, 0o755);
  dataDir = path.join(parent, 'db');
  // A folder as older versions left it: world-readable, with a world-readable file.
  mkdirSync(dataDir, { mode: 0o755 });
  chmodSync(dataDir, 0o755);
  writeFileSync(path.join(dataDir, 'leftover.txt'), 'old', { mode: 0o644 });
  chmodSync(path.join(dataDir, 'leftover.txt'), 0o644);
  db = await startFerretDB({ dataDir, dbName: 'anonymo' });
});
afterAll(async () => {
  await db.stop();
  rmSync(path.dirname(dataDir), { recursive: true, force: true });
});

test('the database listens on a unix socket in its data folder, not on TCP, and the server works through it', async () => {
  expect(db.uri).toMatch(/^mongodb:\/\/%2F/);
  expect(decodeURIComponent(db.uri)).toContain(path.join(dataDir, 'ferretdb.sock'));
  expect(db.uri).not.toMatch(/127\.0\.0\.1|localhost/);
  const server = await startServer({ mongodbUri: db.uri });
  try {
    const browser = new TestClient(server);
    await browser.data('mutation { sendMessage(input: { text: "on the socket" }) { id } }');
    const direct = await openDb(db.uri);
    expect(await direct.db.collection('messages').countDocuments()).toBe(1);
    await direct.close();
  } finally {
    await server.close();
  }
});

test('the data folder is 0700 and every file in it 0600, including files from before', () => {
  expect(mode(dataDir)).toBe(0o700);
  const files = readdirSync(dataDir);
  expect(files).toEqual(expect.arrayContaining(['leftover.txt', 'ferretdb.sock']));
  expect(files.some((f) => f.endsWith('.sqlite'))).toBe(true);
  for (const f of files) {
    const st = statSync(path.join(dataDir, f));
    expect([f, st.mode & 0o077]).toEqual([f, 0]);
  }
});

// Runs as root (as CI and the project's machines do) to act as another user.
test('another local user can neither connect to the database nor read its files', () => {
  const socket = path.join(dataDir, 'ferretdb.sock');
  const script = `
    const net = require('node:net'), fs = require('node:fs');
    const out = {};
    try { fs.readFileSync(${JSON.stringify(path.join(dataDir, 'leftover.txt'))}); out.read = 'ok'; } catch (e) { out.read = e.code; }
    const s = net.connect(${JSON.stringify(socket)});
    s.on('connect', () => { out.connect = 'ok'; console.log(JSON.stringify(out)); s.destroy(); });
    s.on('error', (e) => { out.connect = e.code; console.log(JSON.stringify(out)); });`;
  const r = spawnSync(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', cwd: '/' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual({ read: 'EACCES', connect: 'EACCES' });
});

test('SQLite runs with synchronous=NORMAL (WAL) by default and FULL when asked (EMBEDDED_DB_SYNC)', async () => {
  const cmdline = (d: EmbeddedDatabase) =>
    decodeURIComponent(readFileSync(`/proc/${d.process!.pid}/cmdline`, 'utf8').split('\0').join(' '));
  expect(cmdline(db)).toContain('_pragma=synchronous(normal)');
  const fullDir = mkdtempSync(path.join(tmpdir(), 'anonymo-embedded-full-'));
  const full = await startFerretDB({ dataDir: path.join(fullDir, 'db'), dbName: 'anonymo', synchronous: 'full' });
  try {
    expect(cmdline(full)).toContain('_pragma=synchronous(full)');
    const direct = await openDb(full.uri);
    await direct.db.collection('x').insertOne({ ok: 1 });
    expect(await direct.db.collection('x').countDocuments()).toBe(1);
    await direct.close();
  } finally {
    await full.stop();
    rmSync(fullDir, { recursive: true, force: true });
  }
});
