import { decodeEvent, encodeEvent } from '../../src/realtime/codec';

describe('event wire format', () => {
  test('Dates come back as Dates with the same instant, at any depth', () => {
    const createdAt = new Date('2026-11-24T10:11:12.345Z');
    const event = {
      message: { _id: 'lobby:000000000042', seq: 42, createdAt, readAt: null },
      sender: { id: '65a1b2c3d4e5f60718293a4b', createdAt, lastSeenAt: new Date(0) },
      list: [createdAt],
      at: createdAt,
    };
    const back = decodeEvent<typeof event>(encodeEvent(event));
    expect(back.message.createdAt).toBeInstanceOf(Date);
    expect(back.message.createdAt.getTime()).toBe(createdAt.getTime());
    expect(back.sender.lastSeenAt).toBeInstanceOf(Date);
    expect(back.sender.lastSeenAt.getTime()).toBe(0);
    expect(back.list[0]).toBeInstanceOf(Date);
    expect(back.at.toISOString()).toBe('2026-11-24T10:11:12.345Z');
    expect(back.message.readAt).toBeNull();
    expect(back.message._id).toBe('lobby:000000000042');
    expect(back.message.seq).toBe(42);
  });

  test('strings that look like dates or tags stay strings', () => {
    const event = { text: '2026-11-24T10:11:12.345Z', other: '{"$date":1}', obj: { $date: 'x', more: 1 } };
    expect(decodeEvent(encodeEvent(event))).toEqual(event);
  });

  test('an invalid Date travels as null instead of breaking the event', () => {
    expect(decodeEvent(encodeEvent({ at: new Date(NaN) }))).toEqual({ at: null });
  });
});
