/**
 * The newest number of a gap-free sequence stored as `_id`s (1, 2, 3, ...), found with `_id`
 * lookups only: gallop forward from a number known to exist, then binary-search the boundary.
 * One lookup when nothing changed since `known`, O(log n) the first time.
 */
export async function gallopHead(known: number, exists: (n: number) => Promise<boolean>): Promise<number> {
  let step = 1;
  while (await exists(known + step)) {
    known += step;
    step *= 2;
  }
  let lo = known; // exists (or 0)
  let hi = known + step; // does not exist
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await exists(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
