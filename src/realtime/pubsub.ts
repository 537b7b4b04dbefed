/**
 * Pub/sub between resolvers, services and subscriptions: in-process by default, Redis across
 * instances (redis.pubsub.ts). Both implement one typed interface over {@link TopicMap}.
 *
 * Topics are narrow (one per conversation) so that a subscriber only ever receives events
 * of its own conversation: no global topic filtered per subscriber.
 */

/**
 * Every topic and the payload published on it. Empty here: each domain declares its own
 * topics next to its code (declaration merging in `<domain>.events.ts`), so this module
 * stays free of domain imports and a new kind of event is a new file in its domain.
 * Parameterised topics use template-literal keys, e.g. `` [topic: `message:${string}`]: MessagePayload ``.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface TopicMap {}

/** A topic name (a key of {@link TopicMap}). */
export type TopicName = Extract<keyof TopicMap, string>;

/** The payload type of a topic. */
export type PayloadOf<K extends TopicName> = TopicMap[K];

export type Listener<T> = (payload: T) => void;

export interface PubSub {
  publish<K extends TopicName>(topic: K, payload: PayloadOf<K>): Promise<void>;
  /** Resolves once the subscription is live; the returned function unsubscribes. */
  subscribe<K extends TopicName>(topic: K, listener: Listener<PayloadOf<K>>): Promise<() => void>;
  close(): Promise<void>;
}

/**
 * Single-process pub/sub. Delivery is asynchronous (a microtask later), like a broker,
 * so a publisher never runs subscriber fan-out inside its own request.
 */
export class LocalPubSub implements PubSub {
  private readonly topics = new Map<string, Set<Listener<never>>>();

  publish<K extends TopicName>(topic: K, payload: PayloadOf<K>): Promise<void> {
    const listeners = this.topics.get(topic);
    if (listeners?.size) {
      const snapshot = [...listeners] as Array<Listener<PayloadOf<K>>>;
      queueMicrotask(() => {
        for (const l of snapshot) l(payload);
      });
    }
    return Promise.resolve();
  }

  subscribe<K extends TopicName>(topic: K, listener: Listener<PayloadOf<K>>): Promise<() => void> {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    const listeners = set as Set<Listener<PayloadOf<K>>>;
    listeners.add(listener);
    return Promise.resolve(() => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.topics.get(topic) === set) this.topics.delete(topic);
    });
  }

  close(): Promise<void> {
    this.topics.clear();
    return Promise.resolve();
  }
}
