/**
 * Configuration of abuse control (moderators, reports, bans, content rules, floods).
 * Declared here and spread into config.ts, so the environment is still read and validated in
 * one place.
 */
import { z } from 'zod';
import { emptyAsUndefined, int } from '../env';

export interface ModeratorToken {
  /** Who acted, in the audit log (never the token itself). */
  label: string;
  token: string;
}

const LABELLED = /^([A-Za-z0-9_.-]{1,32})=(.+)$/;
export const MIN_TOKEN_LENGTH = 16;

/** `token` (label "moderator") or `label=token,label=token`. */
export function parseModeratorTokens(value: string): ModeratorToken[] | string {
  const parts = value.split(',').map((s) => s.trim());
  const labelled =
    parts.length > 1 || (LABELLED.test(parts[0]) && LABELLED.exec(parts[0])![2].length >= MIN_TOKEN_LENGTH);
  const tokens = labelled
    ? parts.map((p) => {
        const m = LABELLED.exec(p);
        return m ? { label: m[1], token: m[2] } : { label: '', token: '' };
      })
    : [{ label: 'moderator', token: parts[0] }];
  if (tokens.some((t) => !t.label)) return 'MODERATOR_TOKEN: use one token, or label=token pairs separated by commas';
  if (tokens.some((t) => t.token.length < MIN_TOKEN_LENGTH)) {
    return `MODERATOR_TOKEN: every token must be at least ${MIN_TOKEN_LENGTH} characters`;
  }
  if (new Set(tokens.map((t) => t.label)).size !== tokens.length) return 'MODERATOR_TOKEN: labels must be unique';
  return tokens;
}

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** A duration in seconds: `600`, `600s`, `10m`, `1h`. */
const duration = (name: string, fallback: string, maxSeconds: number) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const m = /^\s*(\d+)\s*(s|m|h)?\s*$/.exec(v);
      const seconds = m ? Number(m[1]) * UNIT_S[m[2] ?? 's'] : NaN;
      if (!(seconds >= 0 && seconds <= maxSeconds)) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be a duration such as 600, 10m or 1h (at most ${maxSeconds} s)`,
        });
        return z.NEVER;
      }
      return seconds;
    });

/** The environment variables of this module (spread into config.ts's schema). */
export const moderationEnv = {
  MODERATOR_TOKEN: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .optional()
      .transform((v, ctx) => {
        if (v === undefined) return [];
        const parsed = parseModeratorTokens(v);
        if (typeof parsed === 'string') {
          ctx.addIssue({ code: 'custom', message: parsed });
          return z.NEVER;
        }
        return parsed;
      }),
  ),
  REPORT_HIDE_THRESHOLD: int('REPORT_HIDE_THRESHOLD', 1, 1000).default(3),
  NETWORK_HASH_SECRET: z.preprocess(
    emptyAsUndefined,
    z.string().min(32, 'NETWORK_HASH_SECRET must be at least 32 characters').optional(),
  ),
  NETWORK_RECORD_DAYS: int('NETWORK_RECORD_DAYS', 1, 365).default(7),
  BLOCKLIST_FILE: z.preprocess(emptyAsUndefined, z.string().optional()),
  NEW_IDENTITY_LINK_DELAY: duration('NEW_IDENTITY_LINK_DELAY', '10m', 30 * 24 * 3600),
  RATE_LIMIT_ESCALATION_MAX: duration('RATE_LIMIT_ESCALATION_MAX', '1h', 24 * 3600),
};

type ModerationEnv = z.output<z.ZodObject<typeof moderationEnv>>;

export interface ModerationConfig {
  /**
   * `MODERATOR_TOKEN` [unset: moderation off, its operations FORBIDDEN]: a token of at least 16
   * characters, or `label=token` pairs separated by commas (the label names the moderator in
   * the audit log). Sent as `Authorization: Bearer <token>` (HTTP) or `{ moderatorToken }` in
   * graphql-ws's connection_init payload.
   */
  moderatorTokens: ModeratorToken[];
  /** `REPORT_HIDE_THRESHOLD` [3]: distinct reporters that hide a message from everyone but its sender. */
  reportHideThreshold: number;
  /**
   * `NETWORK_HASH_SECRET` [derived from the session secret]: HMAC key of the network hashes
   * stored for bans (never the address itself). Changing it forgets every network ban.
   */
  networkHashSecret?: string;
  /** `NETWORK_RECORD_DAYS` [7]: how long a user's network hash is kept after their last message. */
  networkRecordDays: number;
  /** `BLOCKLIST_FILE` [unset]: words and /regexes/, one per line; matching messages are CONTENT_BLOCKED. */
  blocklistFile?: string;
  /** `NEW_IDENTITY_LINK_DELAY` [10m]: identities younger than this cannot post links in the lobby (0: off). */
  newIdentityLinkDelaySeconds: number;
  /** `RATE_LIMIT_ESCALATION_MAX` [1h]: the longest cooldown repeated rate-limit hits escalate to (0: no escalation). */
  escalationMaxSeconds: number;
}

export function moderationConfig(e: ModerationEnv): ModerationConfig {
  return {
    moderatorTokens: e.MODERATOR_TOKEN,
    reportHideThreshold: e.REPORT_HIDE_THRESHOLD,
    networkHashSecret: e.NETWORK_HASH_SECRET,
    networkRecordDays: e.NETWORK_RECORD_DAYS,
    blocklistFile: e.BLOCKLIST_FILE,
    newIdentityLinkDelaySeconds: e.NEW_IDENTITY_LINK_DELAY,
    escalationMaxSeconds: e.RATE_LIMIT_ESCALATION_MAX,
  };
}
