import type { MessageDoc } from '../../src/messages/message.model';
import { RecentMessages } from '../../src/messages/recent-messages';

const doc = (seq: number): MessageDoc => ({
  _id: `lobby:${String(seq).padStart(12, '0')}`,
  conversation: 'lobby',
  seq,
  text: `m ${seq}`,
  sender: 'a',
  recipient: null,
  clientId: null,
  createdAt: new Date(0),
  readAt: null,
});
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => doc(from + i));

describe('RecentMessages.prepend (older messages read for a replay)', () => {
  test('holds them in front of the run, as far as the run has room', () => {
    const recent = new RecentMessages({ perConversation: 5 });
    recent.addRun('lobby', range(8, 10), true);
    recent.prepend('lobby', range(4, 7));
    expect(recent.slice('lobby', 6, 10)?.map((d) => d.seq)).toEqual([6, 7, 8, 9, 10]);
    expect(recent.get('lobby', 5)).toBeUndefined();
  });

  test('a full run takes none of them: it never holds more than its cap', () => {
    const recent = new RecentMessages({ perConversation: 3 });
    recent.addRun('lobby', range(8, 10), true);
    recent.prepend('lobby', range(5, 7));
    expect(recent.get('lobby', 7)).toBeUndefined();
    expect(recent.slice('lobby', 8, 10)?.map((d) => d.seq)).toEqual([8, 9, 10]);
    expect(recent.heldTail('lobby', 5, 10)?.map((d) => d.seq)).toEqual([8, 9, 10]);
  });
});
