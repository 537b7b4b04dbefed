/** `npm run schema`: writes schema.graphql from the type-graphql resolvers. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { printSdl } from '../schema';

void printSdl().then((sdl) => {
  const file = path.resolve(__dirname, '..', '..', 'schema.graphql');
  writeFileSync(file, sdl);
  console.log(`wrote ${file}`);
});
