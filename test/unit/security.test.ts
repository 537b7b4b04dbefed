import { parse } from 'graphql';
import { operationCost, type CostCache } from '../../src/security/cost';
import { ConfigError, loadConfig } from '../../src/config';
import { ipKey } from '../../src/security/ip';
import { hideSuggestions } from '../../src/security/limits';
import { OriginPolicy } from '../../src/security/origin';
import { RateLimits, type LimiterFactory } from '../../src/security/rate-limit';
import { normalizeOrigin, parseRateSpec } from '../../src/security/security.config';
import { RateLimiterMemory } from 'rate-limiter-flexible';

describe('security configuration', () => {
  test('defaults', () => {
    const { security } = loadConfig({});
    expect(security).toMatchObject({
      allowedOrigins: [],
      allowLoopbackOrigins: true,
      maxBodyBytes: 65536,
      maxWsPayloadBytes: 65536,
      hideSuggestions: false,
      operations: {
        maxDepth: 10,
        maxAliases: 15,
        maxDirectives: 10,
        maxTokens: 1000,
        maxCost: 40000,
        maxDocumentBytes: 8192,
      },
      connections: { perIp: 50, perUser: 20 },
      maxReplayMessages: 10000,
      rateLimits: {
        enabled: true,
        sendMessage: { user: { points: 10, durationMs: 10000 }, ip: { points: 60, durationMs: 10000 } },
        typing: { user: { points: 30, durationMs: 10000 }, ip: { points: 300, durationMs: 10000 } },
        findStranger: { user: { points: 30, durationMs: 60000 }, ip: { points: 300, durationMs: 60000 } },
        identities: { ip: { points: 60, durationMs: 3600000 } },
        wsConnections: { ip: { points: 60, durationMs: 60000 } },
        wsOperations: { connection: { points: 100, durationMs: 60000 } },
        replayMessages: { connection: { points: 20000, durationMs: 60000 } },
        httpRequests: { ip: { points: 600, durationMs: 60000 } },
      },
    });
  });

  test('production hides suggestions, refuses loopback origins and keeps PUBLIC_URL’s origin', () => {
    const { security } = loadConfig({
      NODE_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(32),
      PUBLIC_URL: 'https://Chat.Example.com/app/',
      ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080/',
      RATE_LIMITS: 'off',
    });
    expect(security.hideSuggestions).toBe(true);
    expect(security.allowLoopbackOrigins).toBe(false);
    expect(security.publicOrigin).toBe('https://chat.example.com');
    expect(security.allowedOrigins).toEqual(['https://a.example', 'http://b.example:8080']);
    expect(security.rateLimits.enabled).toBe(false);
  });

  test.each([
    ['ALLOWED_ORIGINS', 'https://a.example/path'],
    ['ALLOWED_ORIGINS', '*'],
    ['ALLOWED_ORIGINS', 'ftp://a.example'],
    ['RATE_LIMITS', 'maybe'],
    ['RATE_LIMIT_SEND_MESSAGE', '10'],
    ['RATE_LIMIT_SEND_MESSAGE', '0/10s'],
    ['RATE_LIMIT_TYPING_IP', '5/2d'],
    ['RATE_LIMIT_WS_OPERATIONS', '5/100ms'],
    ['GRAPHQL_MAX_DEPTH', '0'],
    ['HTTP_MAX_BODY_BYTES', 'lots'],
  ])('%s=%s is a configuration error naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  test.each([
    ['10/10s', { points: 10, durationMs: 10000 }],
    ['60/1m', { points: 60, durationMs: 60000 }],
    ['30/1h', { points: 30, durationMs: 3600000 }],
    ['5/1500ms', { points: 5, durationMs: 1500 }],
    ['5/s', { points: 5, durationMs: 1000 }],
    [' 7 / 20 ', { points: 7, durationMs: 20000 }],
    ['7/0s', null],
    ['x/1s', null],
    ['1/25h', null],
  ])('rate "%s"', (value, expected) => {
    expect(parseRateSpec(value)).toEqual(expected);
  });

  test.each([
    ['https://A.example', 'https://a.example'],
    ['https://a.example:443', 'https://a.example'],
    ['http://a.example:80/', 'http://a.example'],
    ['http://[::1]:3000', 'http://[::1]:3000'],
    ['null', null],
    ['https://u@a.example', null],
    ['https://a.example/x', null],
    ['https://a.example?q', null],
    ['chrome-extension://abc', null],
  ])('origin %s normalizes to %s', (value, expected) => {
    expect(normalizeOrigin(value)).toBe(expected);
  });
});

describe('origin policy', () => {
  const policy = (allowLoopbackOrigins: boolean) =>
    new OriginPolicy({
      allowedOrigins: ['https://app.example'],
      publicOrigin: 'https://chat.example',
      allowLoopbackOrigins,
    });

  test.each([
    [undefined, 'chat.example', true],
    ['https://app.example', 'api.example', true],
    ['https://APP.example', 'api.example', true],
    ['https://chat.example', 'internal:4000', true],
    ['https://api.example', 'api.example', true],
    ['http://api.example:4000', 'api.example:4000', true],
    ['https://evil.example', 'api.example', false],
    ['https://app.example.evil.example', 'api.example', false],
    ['https://app.example:8443', 'api.example', false],
    ['null', 'api.example', false],
    ['http://localhost:3000', 'api.example', true],
    ['http://127.0.0.1:9', 'api.example', true],
    ['http://[::1]:9', 'api.example', true],
    ['http://localhost.evil.example', 'api.example', false],
  ])('Origin %s with Host %s: %s outside production', (origin, host, allowed) => {
    expect(policy(true).allows(origin, host)).toBe(allowed);
  });

  test('loopback origins are foreign in production', () => {
    expect(policy(false).allows('http://localhost:3000', 'api.example')).toBe(false);
    expect(policy(false).allows('http://127.0.0.1:4000', 'api.example')).toBe(false);
    expect(policy(false).allows('http://127.0.0.1:4000', '127.0.0.1:4000')).toBe(true);
  });
});

describe('rate limit keys', () => {
  test.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('%s -> %s', (ip, key) => {
    expect(ipKey(ip)).toBe(key);
  });
});

describe('RateLimits', () => {
  const config = (enabled = true) => ({
    enabled,
    sendMessage: { user: { points: 2, durationMs: 60000 }, ip: { points: 3, durationMs: 60000 } },
    typing: { user: { points: 1, durationMs: 60000 }, ip: { points: 1, durationMs: 60000 } },
    findStranger: { user: { points: 1, durationMs: 60000 }, ip: { points: 1, durationMs: 60000 } },
    reportMessage: { user: { points: 1, durationMs: 60000 } },
    identities: { ip: { points: 1, durationMs: 60000 } },
    wsConnections: { ip: { points: 1, durationMs: 60000 } },
    wsOperations: { connection: { points: 1, durationMs: 60000 } },
    replayMessages: { connection: { points: 1, durationMs: 60000 } },
    httpRequests: { ip: { points: 1, durationMs: 60000 } },
  });

  test('each key kind is counted separately; the excess throws RATE_LIMITED with retryAfterMs', async () => {
    const limits = new RateLimits(config());
    await limits.consume('sendMessage', { user: 'a', ip: '10.0.0.1' });
    await limits.consume('sendMessage', { user: 'a', ip: '10.0.0.1' });
    const err = await limits.consume('sendMessage', { user: 'a', ip: '10.0.0.1' }).catch((e) => e);
    expect(err.extensions.code).toBe('RATE_LIMITED');
    expect(err.extensions.retryAfterMs).toBeGreaterThan(0);
    expect(err.extensions.retryAfterMs).toBeLessThanOrEqual(60000);
    // Another user on that address: the address has spent its 3.
    expect(await limits.retryAfter('sendMessage', { user: 'b', ip: '10.0.0.1' })).toBeGreaterThan(0);
    // Another address and user: untouched.
    expect(await limits.retryAfter('sendMessage', { user: 'c', ip: '10.0.0.2' })).toBe(0);
  });

  test('IPv6 addresses of one /64 share a budget', async () => {
    const limits = new RateLimits(config());
    expect(await limits.retryAfter('identities', { ip: '2001:db8:1:2::1' })).toBe(0);
    expect(await limits.retryAfter('identities', { ip: '2001:db8:1:2::ffff' })).toBeGreaterThan(0);
    expect(await limits.retryAfter('identities', { ip: '2001:db8:1:3::1' })).toBe(0);
  });

  test('disabled limits never refuse', async () => {
    const limits = new RateLimits(config(false));
    for (let i = 0; i < 5; i++) expect(await limits.retryAfter('wsConnections', { ip: '10.0.0.1' })).toBe(0);
  });

  test('a failing store lets the action through and is logged', async () => {
    const warn = jest.fn();
    const broken: LimiterFactory = () => ({ consume: () => Promise.reject(new Error('store down')) });
    const limits = new RateLimits(config(), { factory: broken, logger: { warn } as never });
    expect(await limits.retryAfter('sendMessage', { user: 'a', ip: '10.0.0.1' })).toBe(0);
    expect(warn).toHaveBeenCalled();
  });

  test('a shared-store factory receives a distinct prefix per limit and key kind', async () => {
    const prefixes: string[] = [];
    const factory: LimiterFactory = (keyPrefix, spec) => {
      prefixes.push(keyPrefix);
      return new RateLimiterMemory({ keyPrefix, points: spec.points, duration: spec.durationMs / 1000 });
    };
    new RateLimits(config(), { factory });
    expect(new Set(prefixes).size).toBe(prefixes.length);
    expect(prefixes).toContain('anonymo:rl:sendMessage:user');
    expect(prefixes).toContain('anonymo:rl:wsConnections:ip');
  });
});

describe('field suggestions', () => {
  test.each([
    ['Cannot query field "mee" on type "Query". Did you mean "me"?', 'Cannot query field "mee" on type "Query".'],
    ['Unknown argument "frist". Did you mean "first" or "last"?', 'Unknown argument "frist".'],
    ['Value "X" does not exist in "E" enum. Did you mean the enum value "Y"?', 'Value "X" does not exist in "E" enum.'],
    ['Cannot query field "x" on type "Query".', 'Cannot query field "x" on type "Query".'],
  ])('%s', (message, hidden) => {
    expect(hideSuggestions(message)).toBe(hidden);
  });
});

describe('operation cost cache', () => {
  const sizes = { onlineUsers: 50 };
  const doc = parse('query Q($n: Int) { messages(last: $n) { edges { node { id } } } onlineUsers { id } }');
  const fixed = parse('query F { messages(last: 20) { edges { node { id } } } onlineUsers { id } }');

  it('prices an operation whose list sizes are variables with each request’s variables', () => {
    const cache: CostCache = new WeakMap();
    const small = operationCost(doc, 'Q', { n: 1 }, sizes, cache);
    const large = operationCost(doc, 'Q', { n: 1000 }, sizes, cache);
    expect(large).toBeGreaterThan(small);
    expect(cache.get(doc)).toBeUndefined();
  });

  it('prices an operation without variable sizes once and answers the same cost from the cache', () => {
    const cache: CostCache = new WeakMap();
    const first = operationCost(fixed, 'F', {}, sizes, cache);
    expect(cache.get(fixed)?.get('F')).toBe(first);
    expect(operationCost(fixed, 'F', { unrelated: 1 }, sizes, cache)).toBe(first);
    expect(operationCost(fixed, 'F', {}, sizes)).toBe(first);
  });
});
