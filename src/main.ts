/**
 * `npm start`: loads the configuration, provides a database (MONGODB_URI or the embedded
 * one), listens, and stops cleanly on SIGTERM/SIGINT.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, type Config } from './config';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './db/embedded';
import { createLogger } from './logger';
import { createServer, type AnonymoServer } from './app';

/** SESSION_SECRET, or outside production one generated once and kept in the data folder. */
function sessionSecret(config: Config, warn: (msg: string) => void): string {
  if (config.session.secret) return config.session.secret;
  const file = path.resolve(config.dataDir, 'session-secret');
  if (existsSync(file)) {
    warn(`SESSION_SECRET is not set: using the development secret in ${file}`);
    return readFileSync(file, 'utf8').trim();
  }
  mkdirSync(config.dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600 });
  warn(`SESSION_SECRET is not set: generated a development secret in ${file} (set SESSION_SECRET in production)`);
  return secret;
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger(config);
  let embedded: EmbeddedDatabase | undefined;
  let server: AnonymoServer | undefined;
  let stopping: Promise<void> | undefined;

  const stop = (signal: string) =>
    (stopping ??= (async () => {
      // A second Ctrl-C while draining is the same request, not "exit now".
      logger.info({ signal }, 'stopping');
      const force = setTimeout(() => {
        logger.error('shutdown took too long; exiting');
        process.exit(1);
      }, config.shutdownTimeoutMs + 1500);
      force.unref();
      try {
        await server?.close();
        await embedded?.stop();
      } catch (err) {
        logger.error({ err }, 'error while stopping');
      }
      clearTimeout(force);
      process.exit(0);
    })());
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  try {
    let mongodbUri = config.mongodbUri;
    if (mongodbUri) {
      logger.info({ database: 'MONGODB_URI', uri: mongodbUri.replace(/\/\/[^@/]*@/, '//***@') }, 'using MONGODB_URI');
    } else {
      const dataDir = path.resolve(config.dataDir, 'db');
      embedded = await startEmbeddedDatabase({
        dataDir,
        ferretdbBin: config.ferretdbBin,
        synchronous: config.embeddedDbSync,
        log: (msg) => logger.info(msg),
      });
      mongodbUri = embedded.uri;
      logger.info(
        { database: embedded.kind, uri: mongodbUri, dataDir: embedded.dataDir },
        'started the embedded database',
      );
    }
    server = await createServer({
      config,
      mongodbUri,
      sessionSecret: sessionSecret(config, (msg) => logger.warn(msg)),
      logger,
    });
  } catch (err) {
    logger.fatal({ err }, 'could not start');
    await embedded?.stop();
    process.exit(1);
  }
}

void main();
