import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__ANONYMO_DB__?.stop();
  if (process.env.ANONYMO_TEST_DB_DIR) rmSync(process.env.ANONYMO_TEST_DB_DIR, { recursive: true, force: true });
}
