import { useCallback, useEffect, useState, useSyncExternalStore } from 'react';

const subscribeVisibility = (cb: () => void) => {
  document.addEventListener('visibilitychange', cb);
  return () => document.removeEventListener('visibilitychange', cb);
};

/** Whether the tab is visible: messages count as read only when someone can see them. */
export function useDocumentVisible(): boolean {
  return useSyncExternalStore(subscribeVisibility, () => document.visibilityState === 'visible');
}

/** What the main area shows; it lives in the URL, so a reload (or a shared link) returns to it. */
export type View =
  | { kind: 'lobby' }
  | { kind: 'dm'; peerId: string }
  | { kind: 'room'; slug: string }
  | { kind: 'rooms' }
  | { kind: 'stranger' }
  | { kind: 'mod' };

/** `#/dm/<userId>`, `#/r/<slug>` (a room: the invite link), `#/rooms`, `#/stranger`, `#/mod` (moderators); else the lobby. */
export function parseHash(hash: string): View {
  let m = /^#\/dm\/([A-Za-z0-9_-]{1,64})$/.exec(hash);
  if (m) return { kind: 'dm', peerId: m[1] };
  m = /^#\/r\/([A-Za-z0-9_-]{1,64})$/.exec(hash);
  if (m) return { kind: 'room', slug: m[1] };
  if (hash === '#/rooms') return { kind: 'rooms' };
  if (hash === '#/stranger') return { kind: 'stranger' };
  if (hash === '#/mod') return { kind: 'mod' };
  return { kind: 'lobby' };
}

export function viewHash(view: View): string {
  switch (view.kind) {
    case 'dm':
      return `#/dm/${view.peerId}`;
    case 'room':
      return `#/r/${view.slug}`;
    case 'rooms':
      return '#/rooms';
    case 'stranger':
      return '#/stranger';
    case 'mod':
      return '#/mod';
    default:
      return '#/';
  }
}

export function useHashView(): [View, (view: View) => void] {
  const [view, setView] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const onChange = () => setView(parseHash(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  const open = useCallback((next: View) => {
    location.hash = viewHash(next);
  }, []);
  return [view, open];
}
