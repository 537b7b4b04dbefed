import { useSyncExternalStore } from 'react';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting';

type Listener = () => void;

/**
 * The WebSocket's state for the UI, and a signal for "connected again after a drop", when
 * data that has no replay (who is online, conversation list) must be fetched again.
 */
export class ConnectionStatus {
  private state: ConnectionState = 'connecting';
  private readonly listeners = new Set<Listener>();
  private readonly reconnectListeners = new Set<Listener>();

  /** Hooks for graphql-ws `createClient({ on })`. */
  readonly on = {
    connecting: () => this.set(this.state === 'connected' ? 'reconnecting' : this.state),
    connected: (_socket: unknown, _payload: unknown, wasRetry: boolean) => {
      this.set('connected');
      if (wasRetry) this.reconnectListeners.forEach((l) => l());
    },
    closed: () => {
      if (this.state === 'connected') this.set('reconnecting');
    },
  };

  private solvingCount = 0;

  /** Whether a proof-of-work challenge is being solved (lib/pow.ts), for the UI. */
  get solving(): boolean {
    return this.solvingCount > 0;
  }

  readonly setSolving = (solving: boolean): void => {
    this.solvingCount = Math.max(0, this.solvingCount + (solving ? 1 : -1));
    this.listeners.forEach((l) => l());
  };

  get current(): ConnectionState {
    return this.state;
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Runs `listener` each time the socket comes back after a drop. */
  onReconnected(listener: Listener): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  private set(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    this.listeners.forEach((l) => l());
  }
}

export function useConnectionState(status: ConnectionStatus): ConnectionState {
  return useSyncExternalStore(status.subscribe, () => status.current);
}

/** Whether the browser is solving a proof-of-work challenge right now. */
export function useSolving(status: ConnectionStatus): boolean {
  return useSyncExternalStore(status.subscribe, () => status.solving);
}
