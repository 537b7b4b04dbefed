/**
 * The web client's typed documents: generated from the committed schema.graphql and the
 * operations in web/src/graphql/, identical to what is committed in web/src/gql/, valid
 * against the schema, and type-checking with the client (tsc -p web/tsconfig.json).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildSchema, parse, validate, type DocumentNode } from 'graphql';

const ROOT = path.resolve(__dirname, '..', '..');
const OPERATIONS_DIR = path.join(ROOT, 'web', 'src', 'graphql');
const GENERATED_DIR = path.join(ROOT, 'web', 'src', 'gql');

const schema = () => buildSchema(readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));
const operations = (): DocumentNode =>
  parse(
    readdirSync(OPERATIONS_DIR)
      .filter((f) => f.endsWith('.graphql'))
      .map((f) => readFileSync(path.join(OPERATIONS_DIR, f), 'utf8'))
      .join('\n'),
  );

describe('web client codegen', () => {
  test('the operations validate against schema.graphql', () => {
    const errors = validate(schema(), operations());
    expect(errors.map((e) => e.message)).toEqual([]);
  });

  test('the check catches an operation that no longer matches the schema', () => {
    const broken = parse('query Old { me { id zzz } }');
    expect(validate(schema(), broken).map((e) => e.message)).toEqual(['Cannot query field "zzz" on type "User".']);
  });

  test('`npm run codegen` output equals the committed web/src/gql/', () => {
    // The real codegen.yml, with only the output folder moved to a temporary one.
    const out = mkdtempSync(path.join(tmpdir(), 'anonymo-codegen-'));
    try {
      const config = readFileSync(path.join(ROOT, 'codegen.yml'), 'utf8');
      expect(config).toContain('\n  web/src/gql/:\n');
      const tmpConfig = path.join(out, 'codegen.yml');
      writeFileSync(tmpConfig, config.replace('\n  web/src/gql/:\n', `\n  ${JSON.stringify(out + '/gql/')}:\n`));
      const cli = path.join(ROOT, 'node_modules', '@graphql-codegen', 'cli', 'cjs', 'bin.js');
      const r = spawnSync(process.execPath, [cli, '--config', tmpConfig, '--silent'], { cwd: ROOT, encoding: 'utf8' });
      expect(r.stderr + r.stdout).not.toMatch(/error/i);
      expect(r.status).toBe(0);
      const committed = readdirSync(GENERATED_DIR).sort();
      expect(readdirSync(path.join(out, 'gql')).sort()).toEqual(committed);
      for (const file of committed) {
        const fresh = readFileSync(path.join(out, 'gql', file), 'utf8');
        expect([file, fresh]).toEqual([file, readFileSync(path.join(GENERATED_DIR, file), 'utf8')]);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

  test('the web client type-checks against the generated types', () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'web', 'tsconfig.json'), '--noEmit'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);
});
