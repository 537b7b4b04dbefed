/**
 * One live operation per id and connection. graphql-ws lets a client `complete` an id whose
 * subscription is still being set up and then `subscribe` again with that id; when the first
 * set-up finishes it finds the id registered (by the second) and keeps its subscription, and
 * the second then takes the id's slot. The first subscription is orphaned: nothing ever ends
 * it, and it holds its fan-out subscriber and plan until the process stops (found by the
 * fuzzer). An id is therefore taken until its operation has really ended (graphql-ws's
 * onComplete or onError); a subscribe reusing it before then closes the connection with 4409,
 * as graphql-ws does for an id in use.
 */
export class OperationIds {
  /**
   * Per connection context: its live operations as [id, payload, id, payload, ...]. A flat
   * array rather than a Map: a connection has one or a few operations, and a Map with its
   * smallest table is ~0.2 KiB held for as long as each idle subscriber.
   */
  private readonly live = new WeakMap<object, Array<string | object>>();

  /** Takes `id` for this operation; false while an earlier operation with the same id has not ended. */
  claim(connection: object, id: string, payload: object): boolean {
    const ids = this.live.get(connection);
    if (!ids) {
      this.live.set(connection, [id, payload]);
      return true;
    }
    for (let i = 0; i < ids.length; i += 2) if (ids[i] === id) return false;
    // An exact-size copy: a pushed array would grow to 17 slots.
    this.live.set(connection, ids.concat([id, payload]));
    return true;
  }

  /** The operation of `payload` ended (a refused one never held the id). */
  release(connection: object, id: string, payload: object): void {
    const ids = this.live.get(connection);
    if (!ids) return;
    for (let i = 0; i < ids.length; i += 2) {
      if (ids[i] !== id || ids[i + 1] !== payload) continue;
      if (ids.length === 2) this.live.delete(connection);
      else this.live.set(connection, [...ids.slice(0, i), ...ids.slice(i + 2)]);
      return;
    }
  }
}
