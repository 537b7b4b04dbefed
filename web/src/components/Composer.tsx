import { CombinedGraphQLErrors } from '@apollo/client';
import { useMutation } from '@apollo/client/react';
import { useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import {
  ConversationsDocument,
  SendMessageDocument,
  SetTypingDocument,
  type MessagePartsFragment,
} from '../gql/graphql';
import { newClientId } from '../lib/format';
import { useShowText } from '../lib/profanity';
import type { MessageNode } from './MessageList';

export interface Pending {
  clientId: string;
  text: string;
}

/** Typing is renewed this often while keys are pressed (the server expires it after 5 s). */
const TYPING_RENEW_MS = 2000;
const SEND_ATTEMPTS = 4;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Props {
  peerId: string | null;
  /** The message being answered (shown above the composer), or null. */
  replyTo: MessageNode | null;
  onCancelReply: () => void;
  roomId?: string | null;
  onPending: (p: Pending) => void;
  onSettled: (clientId: string) => void;
  /** The server stored the message (it arrives through the subscription as well). */
  onSent: (message: MessagePartsFragment) => void;
}

export function Composer({ peerId, roomId, replyTo, onCancelReply, onPending, onSettled, onSent }: Props) {
  const [text, setText] = useState('');
  const show = useShowText();
  const [error, setError] = useState<string | null>(null);
  const [send] = useMutation(SendMessageDocument);
  const [setTyping] = useMutation(SetTypingDocument);
  const typingSentAt = useRef(0);
  const withId = peerId ?? undefined;
  const room = roomId ?? undefined;

  const typing = (on: boolean) => {
    if (on) {
      if (Date.now() - typingSentAt.current < TYPING_RENEW_MS) return;
      typingSentAt.current = Date.now();
    } else {
      if (typingSentAt.current === 0) return;
      typingSentAt.current = 0;
    }
    setTyping({ variables: { with: withId, room, typing: on } }).catch(() => undefined);
  };

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    const value = text.trim();
    if (!value) return;
    setText('');
    setError(null);
    typing(false);
    const clientId = newClientId();
    const replyToId = replyTo?.id;
    onCancelReply();
    onPending({ clientId, text: value });
    // A network failure may hide a stored message: retrying with the same clientId returns
    // that message instead of storing a second one.
    for (let attempt = 1; ; attempt++) {
      try {
        const { data } = await send({
          variables: { input: { text: value, to: withId, room, clientId, replyTo: replyToId } },
          // A direct message moves its conversation to the top of the list.
          refetchQueries: peerId ? [ConversationsDocument] : [],
        });
        if (data) onSent(data.sendMessage);
        return;
      } catch (err) {
        const refused = CombinedGraphQLErrors.is(err);
        if (refused || attempt >= SEND_ATTEMPTS) {
          onSettled(clientId);
          setText((current) => current || value);
          setError(refused ? (err.errors[0]?.message ?? 'Not sent') : 'Not sent: the server cannot be reached');
          return;
        }
        await sleep(500 * 2 ** attempt);
      }
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    }
  };

  return (
    <form className="composer" onSubmit={submit}>
      {replyTo && (
        <div className="replying" data-testid="replying">
          Replying to <strong>{replyTo.sender.username}</strong>: {show(replyTo.text)}{' '}
          <button type="button" onClick={onCancelReply} aria-label="Cancel reply">
            ×
          </button>
        </div>
      )}
      <textarea
        value={text}
        rows={1}
        maxLength={2000}
        placeholder={room ? 'Write to the room…' : peerId ? 'Write a direct message…' : 'Write to the lobby…'}
        aria-label="Message"
        data-testid="composer"
        onChange={(e) => {
          setText(e.target.value);
          typing(e.target.value.trim() !== '');
        }}
        onKeyDown={onKeyDown}
      />
      <button type="submit" disabled={!text.trim()} data-testid="send">
        Send
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
