import type { Context } from '../../src/context';
import { ContentCheck, parseBlocklist } from '../../src/moderation/content.check';
import { parseModeratorTokens } from '../../src/moderation/moderation.config';
import { ModeratorAuth } from '../../src/moderation/moderator';
import { DECAY_MS, Escalation } from '../../src/security/escalation';

const ctx = (createdAt: number) => ({ user: { id: 'u', createdAt: new Date(createdAt) } }) as unknown as Context;

describe('content rules', () => {
  test('links are refused in the lobby until the identity is NEW_IDENTITY_LINK_DELAY old', async () => {
    let now = 1_000_000;
    const check = new ContentCheck([], 600_000, () => now);
    const created = now;
    await expect(check.check(ctx(created), { text: 'go to www.example.org', to: null })).rejects.toMatchObject({
      extensions: { code: 'CONTENT_BLOCKED' },
    });
    await expect(check.check(ctx(created), { text: 'go to www.example.org', to: 'someone' })).resolves.toEqual({});
    now += 600_000;
    await expect(check.check(ctx(created), { text: 'go to www.example.org', to: null })).resolves.toEqual({});
  });

  test('a blocklist: comments and blank lines skipped, words at word boundaries, expressions case-insensitive', () => {
    const rules = parseBlocklist('# c\n\nspam\n/b[a@]d/g\n');
    const blocked = (t: string) => rules.some((r) => r.test(t));
    expect(rules).toHaveLength(2);
    expect(blocked('SPAM!')).toBe(true);
    expect(blocked('spammer')).toBe(false);
    // The g flag is dropped, so repeated tests give the same answer.
    expect([blocked('B@D'), blocked('B@D'), blocked('B@D')]).toEqual([true, true, true]);
    expect(() => parseBlocklist('ok\n/(/', 'list.txt')).toThrow(/list\.txt:2/);
  });
});

describe('moderator tokens', () => {
  test('one token or label=token pairs; short or duplicate ones are refused', () => {
    expect(parseModeratorTokens('a'.repeat(16))).toEqual([{ label: 'moderator', token: 'a'.repeat(16) }]);
    expect(parseModeratorTokens(`ann=${'a'.repeat(16)},bo=${'b'.repeat(20)}`)).toEqual([
      { label: 'ann', token: 'a'.repeat(16) },
      { label: 'bo', token: 'b'.repeat(20) },
    ]);
    expect(typeof parseModeratorTokens('short')).toBe('string');
    expect(typeof parseModeratorTokens(`a=${'x'.repeat(16)},a=${'y'.repeat(16)}`)).toBe('string');
  });

  test('identify matches whole tokens only and names the label', () => {
    const auth = new ModeratorAuth([
      { label: 'ann', token: 'a'.repeat(16) },
      { label: 'bo', token: 'b'.repeat(16) },
    ]);
    expect(auth.identify('b'.repeat(16))).toEqual({ label: 'bo' });
    expect(auth.identify('b'.repeat(15))).toBeNull();
    expect(auth.identify(undefined)).toBeNull();
    expect(() => new ModeratorAuth([]).require({ moderatorToken: 'a'.repeat(16) })).toThrow(/off/);
  });
});

describe('escalating cooldowns', () => {
  test('double per refusal up to the maximum, and are forgiven one step per decay period', () => {
    let now = 0;
    const e = new Escalation(60_000, () => now);
    expect(e.strike('k', 5000)).toBe(5000);
    expect(e.remaining('k')).toBe(5000);
    expect(e.strike('k', e.remaining('k'))).toBe(10000);
    expect(e.strike('k', e.remaining('k'))).toBe(20000);
    expect(e.strike('k', e.remaining('k'))).toBe(40000);
    expect(e.strike('k', e.remaining('k'))).toBe(60000);
    now += 60_000;
    expect(e.remaining('k')).toBe(0);
    now += DECAY_MS * 4;
    // Five strikes, four forgiven: the next refusal waits twice the base.
    expect(e.strike('k', 5000)).toBe(10000);
    now += DECAY_MS * 10;
    expect(e.strike('k', 5000)).toBe(5000);
    expect(new Escalation(0).strike('x', 1234)).toBe(1234);
  });
});
