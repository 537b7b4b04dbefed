import pino, { type Logger } from 'pino';
import type { Config } from './config';

/**
 * Structured JSON logs. Cookies, authorization headers and message text are never logged:
 * the chat is anonymous, and logs outlive messages.
 */
export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'anonymo' },
    redact: {
      paths: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]', '*.text', 'text'],
      censor: '[redacted]',
    },
  });
}
