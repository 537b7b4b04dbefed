import { solveChallenge, type Challenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/web/sha';

/** The header that carries a solved proof-of-work challenge (see docs/SECURITY.md). */
export const POW_HEADER = 'X-Anonymo-Pow';

/** ALTCHA's payload for a challenge (JSON text), solved here: base64 of `{ challenge, solution }`. */
export async function solvePow(challengeJson: string): Promise<string | null> {
  const challenge = JSON.parse(challengeJson) as Challenge;
  const solution = await solveChallenge({ challenge, deriveKey, timeout: 120_000 });
  return solution ? btoa(JSON.stringify({ challenge, solution })) : null;
}

/** The challenge of a POW_REQUIRED answer, or null for any other answer. */
async function powChallenge(res: Response): Promise<string | null> {
  if (res.status !== 403) return null;
  const body = (await res
    .clone()
    .json()
    .catch(() => null)) as { errors?: Array<{ extensions?: { code?: string; challenge?: unknown } }> } | null;
  const ext = body?.errors?.[0]?.extensions;
  return ext?.code === 'POW_REQUIRED' && typeof ext.challenge === 'string' ? ext.challenge : null;
}

/**
 * `fetch` for the API that answers proof-of-work demands by itself: when the server wants a
 * solved challenge before it creates an identity (a first visit or "New identity" under
 * POW_MODE=on, or from a busy network), the challenge is solved in the browser and the
 * request sent again with the solution. A few rounds at most (a challenge can expire or grow
 * harder while it is solved).
 */
export function powFetch(onSolving?: (solving: boolean) => void): typeof fetch {
  return async (input, init) => {
    let res = await fetch(input, init);
    for (let round = 0; round < 3; round++) {
      const challenge = await powChallenge(res);
      if (!challenge) return res;
      onSolving?.(true);
      const payload = await solvePow(challenge).finally(() => onSolving?.(false));
      if (!payload) return res;
      const headers = new Headers(init?.headers);
      headers.set(POW_HEADER, payload);
      res = await fetch(input, { ...init, headers });
    }
    return res;
  };
}
