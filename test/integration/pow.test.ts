/**
 * Proof of work for new identities (POW_MODE, ALTCHA): challenges come with POW_REQUIRED or
 * from identityChallenge, are solved here with altcha-lib as a client would, and the solution
 * rides on the request that creates the identity (X-Anonymo-Pow, or `?altcha=` on the
 * WebSocket URL). Small difficulties keep the machine idle.
 */
import { randomBytes } from 'node:crypto';
import { solveChallenge, type Challenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/sha';
import type { GraphQLFormattedError } from 'graphql';
import { TestClient } from '../helpers/client';
import { openDb } from '../helpers/db';
import { upgrade } from '../helpers/raw-ws';
import { startServer, type TestServer } from '../helpers/server';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const POW = { POW_DIFFICULTY: '2000' };
const CHALLENGE = '{ identityChallenge { required challenge expiresAt difficulty } }';
type ChallengeView = { required: boolean; challenge: string; expiresAt: string; difficulty: number };

/** ALTCHA's payload for a solved challenge: what the X-Anonymo-Pow header carries. */
async function solve(challengeJson: string): Promise<string> {
  const challenge = JSON.parse(challengeJson) as Challenge;
  const solution = await solveChallenge({ challenge, deriveKey });
  if (!solution) throw new Error('challenge not solved');
  return Buffer.from(JSON.stringify({ challenge, solution })).toString('base64');
}

function powError(errors: GraphQLFormattedError[] | undefined): { reason: string; challenge: string } {
  const e = errors?.[0];
  expect(e?.extensions?.code).toBe('POW_REQUIRED');
  expect(typeof e?.extensions?.challenge).toBe('string');
  return { reason: e!.extensions!.reason as string, challenge: e!.extensions!.challenge as string };
}

/** A cookieless browser whose requests carry `pow` in X-Anonymo-Pow. */
const browserWith = (server: TestServer, pow: string, extra: Record<string, string> = {}) =>
  new TestClient(server, { headers: { 'x-anonymo-pow': pow, ...extra } });

describe('POW_MODE=on', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { POW_MODE: 'on', ...POW } });
  });
  afterAll(() => server.close());

  test('a first request without a solution is refused with POW_REQUIRED and a challenge, creating nothing', async () => {
    const { db, close } = await openDb(server.mongodbUri);
    try {
      const before = await db.collection('users').countDocuments();
      const r = await new TestClient(server).gql('{ me { id } }');
      expect(r.status).toBe(403);
      expect(r.headers.get('set-cookie')).toBeNull();
      const { reason, challenge } = powError(r.errors);
      expect(reason).toBe('missing');
      const parsed = JSON.parse(challenge) as Challenge;
      expect(parsed.parameters.algorithm).toBe('SHA-256');
      expect(parsed.signature).toMatch(/^[0-9a-f]{64}$/);
      expect(parsed.parameters.expiresAt! * 1000).toBeGreaterThan(Date.now());
      expect(await db.collection('users').countDocuments()).toBe(before);
    } finally {
      await close();
    }
  });

  test('the solved challenge creates the identity, and the browser then chats without further work', async () => {
    const first = await new TestClient(server).gql('{ me { id } }');
    const browser = browserWith(server, await solve(powError(first.errors).challenge));
    const me = await browser.me();
    expect(me.id).toMatch(/^[0-9a-f]{24}$/);
    expect(browser.cookie).toBeDefined();
    // The cookie is the identity from now on; the spent solution does not matter any more.
    const sent = await browser.data<{ sendMessage: { text: string } }>(
      'mutation { sendMessage(input: { text: "worked for it" }) { text } }',
    );
    expect(sent.sendMessage.text).toBe('worked for it');
    expect((await browser.me()).id).toBe(me.id);
  });

  test('a solution is spent once: a second cookieless request with it is refused as replayed', async () => {
    const first = await new TestClient(server).gql('{ me { id } }');
    const pow = await solve(powError(first.errors).challenge);
    expect((await browserWith(server, pow).me()).id).toMatch(/^[0-9a-f]{24}$/);
    const again = await browserWith(server, pow).gql('{ me { id } }');
    expect(powError(again.errors).reason).toBe('replayed');
  });

  test('a wrong answer, a tampered challenge or garbage is refused with POW_REQUIRED', async () => {
    const first = await new TestClient(server).gql('{ me { id } }');
    const challenge = JSON.parse(powError(first.errors).challenge) as Challenge;
    const solution = (await solveChallenge({ challenge, deriveKey }))!;
    const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');

    const wrongKey = solution.derivedKey.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const wrong = { challenge, solution: { ...solution, derivedKey: wrongKey } };
    expect(powError((await browserWith(server, encode(wrong)).gql('{ me { id } }')).errors).reason).toBe('invalid');
    // Made easier by the client: the signature no longer matches.
    const easier = {
      ...challenge,
      parameters: { ...challenge.parameters, data: { ...challenge.parameters.data, d: 1 } },
    };
    expect(
      powError((await browserWith(server, encode({ challenge: easier, solution })).gql('{ me { id } }')).errors).reason,
    ).toBe('invalid');
    expect(powError((await browserWith(server, 'not-a-payload!').gql('{ me { id } }')).errors).reason).toBe(
      'malformed',
    );
    expect(powError((await browserWith(server, encode({ x: 1 })).gql('{ me { id } }')).errors).reason).toBe(
      'malformed',
    );
    // The genuine solution still works: the refusals above did not spend it.
    expect((await browserWith(server, encode({ challenge, solution })).me()).id).toMatch(/^[0-9a-f]{24}$/);
  });

  test('resetIdentity needs a solution of its own; identityChallenge hands one out', async () => {
    const first = await new TestClient(server).gql('{ me { id } }');
    const browser = browserWith(server, await solve(powError(first.errors).challenge));
    const before = await browser.me();
    browser.options.headers = {};
    const refused = await browser.gql('mutation { resetIdentity { id } }');
    expect(powError(refused.errors).reason).toBe('missing');
    const { identityChallenge } = await browser.data<{ identityChallenge: ChallengeView }>(CHALLENGE);
    expect(identityChallenge.required).toBe(true);
    expect(identityChallenge.difficulty).toBe(2000);
    expect(new Date(identityChallenge.expiresAt).getTime()).toBeGreaterThan(Date.now());
    browser.options.headers = { 'x-anonymo-pow': await solve(identityChallenge.challenge) };
    const reset = await browser.data<{ resetIdentity: { id: string } }>('mutation { resetIdentity { id } }');
    expect(reset.resetIdentity.id).not.toBe(before.id);
    expect((await browser.me()).id).toBe(reset.resetIdentity.id);
  });

  test('a challenge is bound to the network it was issued to', async () => {
    const proxied = await startServer({ env: { POW_MODE: 'on', ...POW, TRUST_PROXY: 'loopback' } });
    try {
      const from = (ip: string, pow?: string) =>
        new TestClient(proxied, { headers: { 'x-forwarded-for': ip, ...(pow ? { 'x-anonymo-pow': pow } : {}) } });
      const issued = await from('198.51.100.7').gql('{ me { id } }');
      const pow = await solve(powError(issued.errors).challenge);
      expect(powError((await from('203.0.113.9', pow).gql('{ me { id } }')).errors).reason).toBe('invalid');
      expect((await from('198.51.100.7', pow).me()).id).toMatch(/^[0-9a-f]{24}$/);
    } finally {
      await proxied.close();
    }
  });

  test('a WebSocket that would create an identity is refused with 403 and a challenge, and opens with ?altcha=', async () => {
    const refused = await upgrade(server.wsUrl);
    expect(refused.status).toBe(403);
    const body = JSON.parse(refused.body) as { errors: GraphQLFormattedError[] };
    const pow = await solve(powError(body.errors).challenge);
    const opened = await upgrade(`${server.wsUrl}?altcha=${encodeURIComponent(pow)}`);
    expect(opened.status).toBe(101);
    expect(String(opened.headers['set-cookie'])).toMatch(/anonymo\.sid=/);
    opened.ws!.close();
    const replayed = await upgrade(`${server.wsUrl}?altcha=${encodeURIComponent(pow)}`);
    expect(replayed.status).toBe(403);
    expect(powError((JSON.parse(replayed.body) as { errors: GraphQLFormattedError[] }).errors).reason).toBe('replayed');
  });
});

describe('POW_MODE=auto (the default)', () => {
  test('within the identity budget no work is asked; beyond it a solution is required instead of a refusal, and the difficulty grows', async () => {
    const server = await startServer({ env: { RATE_LIMIT_IDENTITIES_IP: '2/1h', ...POW } });
    const { db, close } = await openDb(server.mongodbUri);
    try {
      expect(server.config.pow.mode).toBe('auto');
      const first = new TestClient(server);
      await first.me();
      const calm = await first.data<{ identityChallenge: ChallengeView }>(CHALLENGE);
      expect(calm.identityChallenge.required).toBe(false);
      await new TestClient(server).me(); // the budget is spent now
      expect((await first.data<{ identityChallenge: ChallengeView }>(CHALLENGE)).identityChallenge.required).toBe(true);

      const third = await new TestClient(server).gql('{ me { id } }');
      expect(third.status).toBe(403);
      expect(powError(third.errors).reason).toBe('missing');
      expect(await db.collection('users').countDocuments()).toBe(2);
      expect((await browserWith(server, await solve(powError(third.errors).challenge)).me()).id).toMatch(
        /^[0-9a-f]{24}$/,
      );
      expect(await db.collection('users').countDocuments()).toBe(3);

      // A reset beyond the budget needs work too.
      expect(powError((await first.gql('mutation { resetIdentity { id } }')).errors).reason).toBe('missing');
      // Every budget's worth of identities beyond the first doubles the work.
      const { identityChallenge } = await first.data<{ identityChallenge: ChallengeView }>(CHALLENGE);
      expect(identityChallenge.difficulty).toBe(4000);
    } finally {
      await close();
      await server.close();
    }
  });

  test('POW_MODE=off hands out no challenge', async () => {
    const server = await startServer({ env: { POW_MODE: 'off' } });
    try {
      expect((await new TestClient(server).data<{ identityChallenge: null }>(CHALLENGE)).identityChallenge).toBeNull();
    } finally {
      await server.close();
    }
  });
});

test('with REDIS_URL a solution spent on one instance is refused on another', async () => {
  const env = { POW_MODE: 'on', ...POW, REDIS_URL, REDIS_PREFIX: `anonymo-test-${randomBytes(4).toString('hex')}:` };
  const a = await startServer({ env });
  const b = await startServer({ env, dbName: a.dbName });
  try {
    const pow = await solve(powError((await new TestClient(a).gql('{ me { id } }')).errors).challenge);
    expect((await browserWith(a, pow).me()).id).toMatch(/^[0-9a-f]{24}$/);
    expect(powError((await browserWith(b, pow).gql('{ me { id } }')).errors).reason).toBe('replayed');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
