/**
 * What the messages domain asks of abuse control (blocks, bans, reports, content rules),
 * without depending on it: app.ts injects an implementation (moderation/message-policy.ts).
 * Every method has a permissive default ({@link OPEN_POLICY}), so the messages domain works
 * alone (unit tests, the benchmark).
 */
import type { Context } from '../context';
import type { MessagePayload } from './message.events';
import type { MessageDoc } from './message.model';

export interface SendAdmission {
  /** Store the message visible to its sender only (a shadow ban): it reaches nobody else. */
  shadow?: boolean;
}

/** A send as the client asked for it (before validation). */
export interface SendRequest {
  text: string;
  /** A direct message's recipient. */
  to: string | null;
  /** A room's id. */
  room?: string | null;
}

export interface MessagePolicy {
  /**
   * Checks a send before anything is stored; throws (FORBIDDEN, CONTENT_BLOCKED,
   * RATE_LIMITED) to refuse. `to` is the recipient of a direct message as the client sent it.
   */
  admit(ctx: Context, send: SendRequest): Promise<SendAdmission>;
  /** The messages of a history page the viewer may see, in order. */
  visible(viewerId: string, docs: MessageDoc[]): Promise<MessageDoc[]>;
  /**
   * Who may receive a live message: undefined (everyone: the usual answer, so the grouped
   * fan-out runs unchanged) or a test on the viewer's id. Synchronous: it runs inside the fan-out.
   */
  audience(payload: MessagePayload): ((viewerId: string) => boolean) | undefined;
  /**
   * Who receives a change of a message (`messageUpdated`), and as what: undefined (everyone,
   * the message as it is: the usual answer) or a list of payloads, each with the viewers it
   * goes to (a viewer gets the first that accepts them, or nothing). A message hidden by
   * reports goes to its sender as it is and to everyone else redacted. Synchronous.
   */
  updateAudience?<P extends MessagePayload>(payload: P): Array<UpdateDelivery<P>> | undefined;
}

export interface UpdateDelivery<P extends MessagePayload = MessagePayload> {
  payload: P;
  to: (viewerId: string) => boolean;
}

export const OPEN_POLICY: MessagePolicy = {
  admit: () => Promise.resolve({}),
  visible: (_viewer, docs) => Promise.resolve(docs),
  audience: () => undefined,
};
