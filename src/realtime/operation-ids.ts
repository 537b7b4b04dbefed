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
  /** Per connection context: id to the payload object of the operation holding it. */
  private readonly live = new WeakMap<object, Map<string, object>>();

  /** Takes `id` for this operation; false while an earlier operation with the same id has not ended. */
  claim(connection: object, id: string, payload: object): boolean {
    let ids = this.live.get(connection);
    if (!ids) this.live.set(connection, (ids = new Map<string, object>()));
    if (ids.has(id)) return false;
    ids.set(id, payload);
    return true;
  }

  /** The operation of `payload` ended (a refused one never held the id). */
  release(connection: object, id: string, payload: object): void {
    const ids = this.live.get(connection);
    if (ids?.get(id) === payload) ids.delete(id);
  }
}
