import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config';

/**
 * Structured JSON logs. Cookies, authorization headers and message text are never logged:
 * the chat is anonymous, and logs outlive messages. `destination` defaults to stdout (tests
 * pass a stream to read the lines back).
 */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  const options = {
    level: config.logLevel,
    base: { service: 'anonymo' },
    redact: {
      paths: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]', '*.text', 'text'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
