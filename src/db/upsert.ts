import { isDuplicateKey } from './strategy';

/**
 * Runs an upsert, retrying when it loses a race to create the same document.
 *
 * Two concurrent upserts of a document that does not exist yet can both try to insert it;
 * the loser fails with E11000 (MongoDB documents this, and FerretDB does it more often,
 * e.g. two instances adding the first conversation to one user's inbox). On retry the
 * document exists and the update applies to it.
 */
export async function upsertWithRetry<T>(op: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await op();
    } catch (err) {
      if (!isDuplicateKey(err) || i >= attempts) throw err;
    }
  }
}
