/**
 * Content rules: a blocklist of words and regular expressions (BLOCKLIST_FILE), and no links
 * from identities younger than NEW_IDENTITY_LINK_DELAY in public places (the lobby), where
 * spam bots post them first.
 */
import { readFileSync } from 'node:fs';
import type { Context } from '../context';
import { ContentBlockedError } from '../errors';
import type { SendAdmission, SendRequest } from '../messages/message.policy';
import type { SendCheck } from './message-policy';

/** Anything a browser or chat client would turn into a link. */
const LINK =
  /\b(?:https?:\/\/|www\.)\S|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ru|xyz|info|biz|co|me|ly|gg|tk|app|top|click|link|shop|online|site)\b/i;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Parses a blocklist: one rule a line; `#` starts a comment line; `/pattern/flags` is a regular
 * expression, anything else a word or phrase matched case-insensitively at word boundaries.
 * Throws naming the line of a bad expression.
 */
export function parseBlocklist(text: string, source = 'blocklist'): RegExp[] {
  const rules: RegExp[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const re = /^\/(.+)\/([a-z]*)$/.exec(line);
    try {
      rules.push(
        re
          ? // g and y would make test() remember where it stopped between messages.
            new RegExp(re[1], [...new Set(re[2].replace(/[gy]/g, '') + 'i')].join(''))
          : new RegExp(`(?<![\\p{L}\\p{N}])${escape(line)}(?![\\p{L}\\p{N}])`, 'iu'),
      );
    } catch (err) {
      throw new Error(`${source}:${i + 1}: ${(err as Error).message}`, { cause: err });
    }
  });
  return rules;
}

export function loadBlocklist(path: string | undefined): RegExp[] {
  return path ? parseBlocklist(readFileSync(path, 'utf8'), path) : [];
}

export class ContentCheck implements SendCheck {
  constructor(
    private readonly blocklist: readonly RegExp[],
    private readonly linkDelayMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  check(ctx: Context, send: SendRequest): Promise<SendAdmission> {
    const text = typeof send.text === 'string' ? send.text : '';
    if (this.blocklist.some((re) => re.test(text))) {
      return Promise.reject(new ContentBlockedError('This message contains words that are not allowed here'));
    }
    const age = this.now() - new Date(ctx.user.createdAt).getTime();
    if (send.to === null && age < this.linkDelayMs && LINK.test(text)) {
      const minutes = Math.ceil((this.linkDelayMs - age) / 60000);
      return Promise.reject(
        new ContentBlockedError(
          `New identities can post links in public places in ${minutes} min; direct messages are fine`,
        ),
      );
    }
    return Promise.resolve({});
  }
}
