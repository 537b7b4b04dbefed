/**
 * Bounds the replays (`after`) running at once on this instance. After a restart every
 * client reconnects within seconds and each of its subscriptions replays what it missed:
 * unbounded, that is thousands of concurrent database reads and renders, and the server
 * answers none of them in time. Here at most `concurrent` replays run; the next ones wait
 * in arrival order (queued, not refused) up to `queue` waiting; beyond that a subscribe is
 * refused with RATE_LIMITED and a `retryAfterMs`, and the client subscribes again later.
 *
 * A waiter whose socket closed while it waited is skipped when its turn comes, so clients
 * that gave up do not hold the line.
 */
import { RateLimitedError } from '../errors';

export interface ReplayGateOptions {
  /** Replays running at once (REPLAY_CONCURRENCY). */
  concurrent: number;
  /** Replays waiting for a slot before the next subscribe is refused (REPLAY_QUEUE). */
  queue: number;
  /** The `retryAfterMs` of a refusal. Default 1000. */
  retryAfterMs?: number;
}

interface Waiter {
  /** False once the subscriber is gone: its turn is skipped. */
  live: () => boolean;
  resolve: (release: () => void) => void;
}

export interface ReplayGateStats {
  running: number;
  waiting: number;
  /** Subscribes refused because the queue was full, since start. */
  refused: number;
}

export class ReplayGate {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  /** Index of the first waiter still in `waiting` (a ring of sorts: shifting 10,000 items is slow). */
  private head = 0;
  private refused = 0;

  constructor(private readonly options: ReplayGateOptions) {}

  /**
   * Resolves with the release function once a slot is free; throws RATE_LIMITED when the
   * queue is full. A waiter that stopped being `live` is resolved with a no-op release
   * (it holds no slot) so its caller can finish.
   */
  acquire(live: () => boolean): Promise<() => void> {
    if (this.running < this.options.concurrent && this.waitingCount() === 0) return Promise.resolve(this.slot());
    if (this.waitingCount() >= this.options.queue) this.dropGone();
    if (this.waitingCount() >= this.options.queue) {
      this.refused++;
      return Promise.reject(
        new RateLimitedError(
          'Too many replays in progress; subscribe again shortly',
          this.options.retryAfterMs ?? 1000,
        ),
      );
    }
    return new Promise((resolve) => this.waiting.push({ live, resolve }));
  }

  stats(): ReplayGateStats {
    return { running: this.running, waiting: this.waitingCount(), refused: this.refused };
  }

  private waitingCount(): number {
    return this.waiting.length - this.head;
  }

  /** Removes waiters whose subscriber is gone (only when the queue is full: O(queue)). */
  private dropGone(): void {
    const kept: Waiter[] = [];
    for (let i = this.head; i < this.waiting.length; i++) {
      const w = this.waiting[i];
      if (w.live()) kept.push(w);
      else w.resolve(() => undefined);
    }
    this.waiting.length = 0;
    this.waiting.push(...kept);
    this.head = 0;
  }

  private slot(): () => void {
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.next();
    };
  }

  private next(): void {
    while (this.running < this.options.concurrent && this.waitingCount() > 0) {
      const w = this.waiting[this.head++];
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (w.live()) w.resolve(this.slot());
      else w.resolve(() => undefined);
    }
  }
}
