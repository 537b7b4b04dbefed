import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema as buildSdl } from 'graphql';
import { printSdl } from '../../src/schema';

const root = path.resolve(__dirname, '..', '..');

describe('schema.graphql', () => {
  test('is up to date with the resolvers (run `npm run schema` when this fails)', async () => {
    const committed = readFileSync(path.join(root, 'schema.graphql'), 'utf8');
    expect(committed).toBe(await printSdl());
  });

  test('contains the fixed contract of ../shared/CONTRACT.md (or its copy in docs/)', async () => {
    const candidates = [path.join(root, '..', 'shared', 'CONTRACT.md'), path.join(root, 'docs', 'CONTRACT.md')];
    const contractFile = candidates.find((f) => {
      try {
        readFileSync(f);
        return true;
      } catch {
        return false;
      }
    })!;
    const md = readFileSync(contractFile, 'utf8');
    const sdl = /```graphql\n([\s\S]*?)```/.exec(md)![1];
    const contract = buildSdl(sdl);
    const ours = buildSdl(await printSdl());
    for (const type of Object.values(contract.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      const mine = ours.getType(type.name);
      expect(mine?.name).toBe(type.name);
      if ('getFields' in type) {
        const theirs = type.getFields() as Record<
          string,
          { type: unknown; args?: Array<{ name: string; type: unknown }> }
        >;
        const have = (mine as typeof type).getFields() as typeof theirs;
        for (const [name, f] of Object.entries(theirs)) {
          expect(`${type.name}.${name}: ${String(have[name]?.type)}`).toBe(`${type.name}.${name}: ${String(f.type)}`);
          for (const a of f.args ?? []) {
            const mineArg = have[name].args?.find((x) => x.name === a.name);
            expect(`${type.name}.${name}(${a.name}: ${String(mineArg?.type)})`).toBe(
              `${type.name}.${name}(${a.name}: ${String(a.type)})`,
            );
          }
        }
      }
    }
  });
});
