// ESLint: typescript-eslint's recommended type-checked rules on the server, tests, benchmark
// and web client. Run by `npm run lint` (with Prettier's check) and by .ci/run before the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.tools/**',
      'coverage/**',
      'data/**',
      'web/dist/**',
      'web/src/gql/**',
      'bench/results/**',
      'test-output/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // type-graphql declares arguments through decorated parameters a resolver may not read
      // (`@Args() _args`); a leading underscore says "declared, deliberately unused".
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // Implementations of Promise-returning interfaces (PubSub, PresenceRegistry, Apollo
      // plugin hooks) are written `async` so that a throw becomes a rejection like the
      // interface promises, whether or not that implementation happens to await.
      '@typescript-eslint/require-await': 'off',
      // Node-style callbacks hand over `any`/`unknown` errors that are passed on as they are.
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
      // prom-client's collect() and Apollo's hooks run with their own `this`.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self', 'metrics'] }],
    },
  },
  {
    // Tests read GraphQL responses as untyped JSON and check them with jest's matchers, which
    // is the assertion that matters; typing every response shape would only restate the schema.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // jest's matchers take methods by reference (`expect(x.close)`), which this rule cannot tell apart.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // React event handlers may be async; React ignores what they return.
    files: ['web/**/*.tsx'],
    rules: { '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }] },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    rules: {
      ...tseslint.configs.disableTypeChecked.rules,
      // jest's config files are CommonJS.
      '@typescript-eslint/no-require-imports': 'off',
    },
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: {
        process: 'readonly',
        console: 'readonly',
        module: 'writable',
        require: 'readonly',
        __dirname: 'readonly',
      },
    },
  },
);
