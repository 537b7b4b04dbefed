/**
 * One `close` listener per WebSocket, however many parts of the server need to know.
 *
 * Each `socket.once('close', fn)` costs a bound wrapper, its state object and the listener's
 * closure for the whole life of the connection, and the registry, presence, the connection
 * log and every subscription each added one: about 1.5 KiB per idle connection, and Node's
 * MaxListenersExceededWarning once a socket carried more than ten subscriptions. Here the
 * socket gets one shared listener and a list of hooks, removed again when a subscription ends.
 *
 * A hook may be an object with a `socketClosed` method instead of a function: an object that
 * lives as long as the connection or subscription anyway (the connection's record, a
 * subscription's attachment) then needs no closure, and no second closure to remove it.
 */
import type { WebSocket } from 'ws';

/** Told once, with the close code and reason, when its socket has closed. */
export interface SocketCloseHook {
  socketClosed(code: number, reason: Buffer): void;
}
type Hook = SocketCloseHook | ((code: number, reason: Buffer) => void);

const HOOKS = Symbol('anonymo.closeHooks');
/**
 * An array, not a Set: a socket has a handful of hooks, and a Set's smallest table is ~180
 * bytes. Replaced (an exact-size copy) on every change rather than pushed to: a pushed array
 * grows to 17 slots on its first push (~0.15 KiB per connection for two or three hooks).
 */
type Hooked = WebSocket & { [HOOKS]?: Hook[] };

/** The shared listener: runs the socket's hooks once, in the order they were added. */
function runHooks(this: Hooked, code: number, reason: Buffer): void {
  const hooks = this[HOOKS];
  this[HOOKS] = undefined;
  this.off('close', runHooks);
  // Never changed in place: a hook removing itself (a subscription ending detaches) while
  // the list runs does not disturb it.
  if (!hooks) return;
  for (const hook of hooks) {
    if (typeof hook === 'function') hook(code, reason);
    else hook.socketClosed(code, reason);
  }
}

/** Calls `hook` with the close code when the socket closes (once per time it is added). */
export function addSocketCloseHook(socket: WebSocket, hook: Hook): void {
  const s = socket as Hooked;
  const hooks = s[HOOKS];
  if (hooks) s[HOOKS] = hooks.concat([hook]);
  else {
    s[HOOKS] = [hook];
    socket.on('close', runHooks);
  }
}

/** Removes a hook added with {@link addSocketCloseHook} (nothing if it ran already or was never added). */
export function removeSocketCloseHook(socket: WebSocket, hook: Hook): void {
  const s = socket as Hooked;
  const hooks = s[HOOKS];
  if (hooks?.includes(hook)) s[HOOKS] = hooks.filter((h) => h !== hook);
}

/** Calls `hook` with the close code when the socket closes; returns a function that removes it. */
export function onSocketClose(socket: WebSocket, hook: (code: number) => void): () => void {
  addSocketCloseHook(socket, hook);
  return () => removeSocketCloseHook(socket, hook);
}
