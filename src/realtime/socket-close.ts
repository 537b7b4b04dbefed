/**
 * One `close` listener per WebSocket, however many parts of the server need to know.
 *
 * Each `socket.once('close', fn)` costs a bound wrapper, its state object and the listener's
 * closure for the whole life of the connection, and the registry, presence, the connection
 * log and every subscription each added one: about 1.5 KiB per idle connection, and Node's
 * MaxListenersExceededWarning once a socket carried more than ten subscriptions. Here the
 * socket gets one shared listener and a Set of hooks, removed again when a subscription ends.
 */
import type { WebSocket } from 'ws';

const HOOKS = Symbol('anonymo.closeHooks');
type Hook = (code: number) => void;
/** An array, not a Set: a socket has a handful of hooks, and a Set's smallest table is ~180 bytes. */
type Hooked = WebSocket & { [HOOKS]?: Hook[] };

/** The shared listener: runs the socket's hooks once, in the order they were added. */
function runHooks(this: Hooked, code: number): void {
  const hooks = this[HOOKS];
  this[HOOKS] = undefined;
  this.off('close', runHooks);
  // A copy: a hook may remove itself (a subscription ending detaches) while the list runs.
  if (hooks) for (const hook of hooks.slice()) hook(code);
}

/** Calls `hook` with the close code when the socket closes; returns a function that removes it. */
export function onSocketClose(socket: WebSocket, hook: Hook): () => void {
  const s = socket as Hooked;
  let hooks = s[HOOKS];
  if (!hooks) {
    hooks = s[HOOKS] = [];
    socket.on('close', runHooks);
  }
  hooks.push(hook);
  const list = hooks;
  return () => {
    const i = list.indexOf(hook);
    if (i >= 0) list.splice(i, 1);
  };
}
