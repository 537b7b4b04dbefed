/** Starts the server the fuzzer talks to, with a logger that keeps its error-level lines. */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import type { AnonymoServer } from '../../src/app';
import type { FuzzTarget } from './fuzzer';

/** A logger for the fuzzed server (errors only: info lines for 100,000 requests are noise) and what it wrote. */
export function errorLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger({ logLevel: 'error' }, sink), lines };
}

/**
 * Also counts what libraries print with console.error (graphql-ws does, for errors in its
 * message handling) as error log lines. Returns the function that restores console.error.
 */
export function captureConsoleErrors(lines: string[]): () => void {
  const original = console.error;
  console.error = (...args: unknown[]) => {
    lines.push(
      `console.error: ${args.map((a) => (a instanceof Error ? (a.stack ?? a.message) : String(a))).join(' ')}`,
    );
  };
  return () => {
    console.error = original;
  };
}

export function fuzzTarget(server: AnonymoServer, mongodbUri: string, lines: string[]): FuzzTarget {
  return {
    url: server.url,
    wsUrl: server.wsUrl,
    mongodbUri,
    live: () => {
      const s = server.services.realtime.stats();
      return { connections: server.stats().connections, subscribers: s.subscribers, plans: s.plans };
    },
    errorLogs: () => lines,
  };
}

/** Environment of the fuzzed server: limits on (their code paths run) but far away, except the document limits. */
export const FUZZ_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  SESSION_SECRET: 'fuzz-secret-fuzz-secret-fuzz-secret-0123',
  // Plain HTTP on loopback: a Secure cookie would never be set.
  SESSION_COOKIE_SECURE: 'false',
  PORT: '0',
  HOST: '127.0.0.1',
  METRICS_PORT: '0',
  PRESENCE_GRACE_MS: '200',
  MAX_REPLAY_MESSAGES: '10000',
  RATE_LIMIT_SEND_MESSAGE: '100000/1s',
  RATE_LIMIT_SEND_MESSAGE_IP: '100000/1s',
  RATE_LIMIT_TYPING: '100000/1s',
  RATE_LIMIT_TYPING_IP: '100000/1s',
  RATE_LIMIT_IDENTITIES_IP: '100000/1s',
  RATE_LIMIT_WS_CONNECTIONS_IP: '100000/1s',
  RATE_LIMIT_WS_OPERATIONS: '100000/1s',
  RATE_LIMIT_REPLAY_MESSAGES: '100000/1s',
  RATE_LIMIT_HTTP_IP: '100000/1s',
  WS_MAX_CONNECTIONS_PER_IP: '100000',
  WS_MAX_CONNECTIONS_PER_USER: '100000',
};
