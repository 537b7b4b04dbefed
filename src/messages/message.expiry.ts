/**
 * Whether a stored message still exists for readers. Expired messages (disappearing messages,
 * RETENTION_DAYS) are hidden from the moment they expire, although the purge job (see
 * src/lifecycle/purge.job.ts) removes their content up to a purge interval later, and the
 * purge leaves a stub in their place (the position only) so that sequence numbers stay
 * derivable: every reader skips both.
 */
import type { MessageDoc } from './message.model';

export class MessageExpiry {
  /** `retentionMs`: RETENTION_DAYS as milliseconds, undefined to keep messages for good. */
  constructor(readonly retentionMs?: number) {}

  /** When a message created at `createdAt` expires, given its conversation's TTL (seconds, or null). */
  expiresAt(createdAt: Date, ttlSeconds: number | null | undefined): Date | null {
    const times = [
      ttlSeconds ? createdAt.getTime() + ttlSeconds * 1000 : Infinity,
      this.retentionMs !== undefined ? createdAt.getTime() + this.retentionMs : Infinity,
    ];
    const at = Math.min(...times);
    return Number.isFinite(at) ? new Date(at) : null;
  }

  /** Messages created before this are past retention (also those stored before RETENTION_DAYS was set). */
  retentionCutoff(now = Date.now()): Date | null {
    return this.retentionMs !== undefined ? new Date(now - this.retentionMs) : null;
  }

  isVisible(doc: MessageDoc, now = Date.now()): boolean {
    if (doc.purgedAt || typeof doc.text !== 'string') return false;
    if (doc.expiresAt && new Date(doc.expiresAt).getTime() <= now) return false;
    if (this.retentionMs !== undefined && new Date(doc.createdAt).getTime() <= now - this.retentionMs) return false;
    return true;
  }
}
