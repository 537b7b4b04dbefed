/**
 * Jest runs the TypeScript sources through ts-jest in transpile-only mode (type checking is
 * `npm run typecheck`). @faker-js/faker ships only ES modules, which jest's CommonJS runtime
 * cannot load, so it is transformed too.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }],
  },
  transformIgnorePatterns: ['/node_modules/(?!@faker-js/faker/)'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  testTimeout: 30000,
  maxWorkers: 2,
  // Each suite starts servers in its worker; a worker that has grown past this after a suite
  // is replaced, so the whole run does not depend on V8 returning every suite's heap (a
  // single worker was seen reaching its 4 GB heap limit near the end of a full run).
  workerIdleMemoryLimit: '1536MB',
};
