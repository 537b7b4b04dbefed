import { ConfigError, loadConfig } from '../../src/config';

const SECRET = 'x'.repeat(32);

describe('configuration', () => {
  test('defaults describe a development server on port 4000 with the embedded database', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      env: 'development',
      port: 4000,
      host: '0.0.0.0',
      mongodbUri: undefined,
      dataDir: './data',
      introspection: true,
    });
    expect(c.session).toMatchObject({ cookieName: 'anonymo.sid', sameSite: 'lax', secure: false });
    expect(c.presenceGraceMs).toBe(10000);
    expect(c.maxConnections).toBe(10000);
  });

  test('production refuses to start without SESSION_SECRET and makes cookies secure', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/SESSION_SECRET: required when NODE_ENV=production/);
    const c = loadConfig({ NODE_ENV: 'production', SESSION_SECRET: SECRET });
    expect(c.session.secure).toBe(true);
    expect(c.introspection).toBe(false);
    expect(
      loadConfig({ NODE_ENV: 'production', SESSION_SECRET: SECRET, GRAPHQL_INTROSPECTION: 'true' }).introspection,
    ).toBe(true);
  });

  test('proof of work: auto with a difficulty of 100000 unless told otherwise; bad values are named', () => {
    expect(loadConfig({}).pow).toEqual({ mode: 'auto', difficulty: 100000 });
    expect(loadConfig({ POW_MODE: 'on', POW_DIFFICULTY: '5000' }).pow).toEqual({ mode: 'on', difficulty: 5000 });
    expect(() => loadConfig({ POW_MODE: 'always' })).toThrow(/POW_MODE must be off, on or auto/);
    expect(() => loadConfig({ POW_DIFFICULTY: '10' })).toThrow(/POW_DIFFICULTY must be at least 1000/);
    expect(() => loadConfig({ POW_DIFFICULTY: 'hard' })).toThrow(/POW_DIFFICULTY must be a number/);
  });

  test('SameSite=none requires secure cookies', () => {
    expect(loadConfig({ SESSION_COOKIE_SAMESITE: 'none' }).session.secure).toBe(true);
    expect(() => loadConfig({ SESSION_COOKIE_SAMESITE: 'none', SESSION_COOKIE_SECURE: 'false' })).toThrow(ConfigError);
  });

  test('every bad variable is named in one error', () => {
    try {
      loadConfig({ PORT: 'eighty', MONGODB_URI: 'postgres://x', PRESENCE_GRACE_MS: '-1', SESSION_SECRET: 'short' });
      throw new Error('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      for (const name of ['PORT', 'MONGODB_URI', 'PRESENCE_GRACE_MS', 'SESSION_SECRET']) expect(msg).toContain(name);
    }
  });

  test('empty values mean unset', () => {
    const c = loadConfig({ MONGODB_URI: '', SESSION_SECRET: '', PUBLIC_URL: '' });
    expect(c.mongodbUri).toBeUndefined();
    expect(c.session.secret).toBeUndefined();
    expect(c.publicUrl).toBeUndefined();
  });
});
