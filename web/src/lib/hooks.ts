import { useCallback, useEffect, useState, useSyncExternalStore } from 'react';

const subscribeVisibility = (cb: () => void) => {
  document.addEventListener('visibilitychange', cb);
  return () => document.removeEventListener('visibilitychange', cb);
};

/** Whether the tab is visible: messages count as read only when someone can see them. */
export function useDocumentVisible(): boolean {
  return useSyncExternalStore(subscribeVisibility, () => document.visibilityState === 'visible');
}

/** The open conversation lives in the URL (`#/dm/<userId>`), so a reload returns to it. */
export function useHashPeer(): [string | null, (peerId: string | null) => void] {
  const read = () => /^#\/dm\/([0-9a-f]{24})$/.exec(location.hash)?.[1] ?? null;
  const [peer, setPeer] = useState(read);
  useEffect(() => {
    const onChange = () => setPeer(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  const open = useCallback((peerId: string | null) => {
    location.hash = peerId ? `#/dm/${peerId}` : '#/';
  }, []);
  return [peer, open];
}
