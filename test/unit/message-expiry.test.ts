import { MessageExpiry } from '../../src/messages/message.expiry';
import type { MessageDoc } from '../../src/messages/message.model';

const doc = (over: Partial<MessageDoc>): MessageDoc => ({
  _id: 'lobby:000000000001',
  conversation: 'lobby',
  seq: 1,
  text: 'hi',
  sender: 'u',
  recipient: null,
  clientId: null,
  createdAt: new Date(1_000_000),
  readAt: null,
  ...over,
});

describe('MessageExpiry', () => {
  test('a message is hidden from the moment it expires, before any purge', () => {
    const e = new MessageExpiry();
    const m = doc({ expiresAt: new Date(2_000_000) });
    expect(e.isVisible(m, 1_999_999)).toBe(true);
    expect(e.isVisible(m, 2_000_000)).toBe(false);
  });

  test('purge stubs (no text) are never visible; messages without expiry always are', () => {
    const e = new MessageExpiry();
    expect(e.isVisible({ ...doc({ purgedAt: new Date() }), text: undefined } as unknown as MessageDoc)).toBe(false);
    expect(e.isVisible(doc({}), Number.MAX_SAFE_INTEGER)).toBe(true);
  });

  test('retention bounds messages stored without an expiry, and the earlier of TTL and retention applies', () => {
    const e = new MessageExpiry(1000);
    expect(e.isVisible(doc({}), 1_000_999)).toBe(true);
    expect(e.isVisible(doc({}), 1_001_000)).toBe(false);
    expect(e.expiresAt(new Date(0), 30)).toEqual(new Date(1000));
    expect(e.expiresAt(new Date(0), null)).toEqual(new Date(1000));
    expect(new MessageExpiry().expiresAt(new Date(0), 30)).toEqual(new Date(30000));
    expect(new MessageExpiry().expiresAt(new Date(0), null)).toBeNull();
  });
});
