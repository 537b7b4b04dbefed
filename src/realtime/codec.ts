/**
 * Wire format of events between instances. Plain JSON would turn every Date of a payload
 * (MessageDoc.createdAt/readAt, UserRecord.createdAt/lastSeenAt, PresencePayload.at) into a
 * string, and a resolver on the receiving instance would then render it differently from
 * the sending one; so Dates travel tagged and come back as Dates.
 *
 * Payloads are built by the server (user text only ever sits in string fields), so no
 * client can forge a tagged object.
 */

const DATE_TAG = '$date';

/** Serialises an event; Dates become `{ "$date": <epoch ms> }` (an invalid Date becomes null). */
export function encodeEvent(payload: unknown): string {
  return JSON.stringify(payload, function (this: Record<string, unknown>, key: string, value: unknown) {
    // JSON.stringify has already called Date.prototype.toJSON on `value`; the holder still has the Date.
    const original = this[key];
    if (original instanceof Date) {
      const ms = original.getTime();
      return Number.isNaN(ms) ? null : { [DATE_TAG]: ms };
    }
    return value;
  });
}

/** Parses what {@link encodeEvent} produced, reviving Dates. */
export function decodeEvent<T = unknown>(text: string): T {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const tagged = (value as Record<string, unknown>)[DATE_TAG];
      if (typeof tagged === 'number' && Object.keys(value).length === 1) return new Date(tagged);
    }
    return value;
  }) as T;
}
