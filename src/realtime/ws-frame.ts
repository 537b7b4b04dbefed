/**
 * Writes a graphql-ws `next` message as one pre-encoded WebSocket frame.
 *
 * `socket.send()` costs, per call: an options object, a header buffer, and a corked pair of
 * writes (header, then data). A fan-out writes the same payload to thousands of sockets, so
 * the frame (header, the subscription's own prefix, the shared payload) is assembled in one
 * buffer and handed to ws's Sender as a pre-encoded frame: one allocation and one write per
 * delivery. This is the recipe ws documents for broadcasting pre-framed data
 * (websockets/ws#617) and the one Socket.IO's adapter uses (`wsPreEncodedFrame`).
 *
 * Only when nothing can reorder frames: no per-message compression (the server does not
 * negotiate it) and the Sender idle (not waiting on a compressed or Blob message). Otherwise,
 * and when ws's internals do not look as expected, it falls back to `socket.send`.
 */
import type { WebSocket } from 'ws';

/** What this module uses of ws's Sender (lib/sender.js): its state and `sendFrame`. */
interface WsSender {
  _state?: number;
  sendFrame?: (list: Buffer[], cb?: (err?: Error) => void) => void;
}

const SENDER_IDLE = 0;
const TEXT_FRAME = { binary: false } as const;

/** FIN + text opcode: an unfragmented text message. */
const FIN_TEXT = 0x81;

const senderOf = (socket: WebSocket) => (socket as unknown as { _sender?: WsSender })._sender;

/** Whether frames for this socket may be pre-encoded (checked once per subscription). */
export function canPreEncode(socket: WebSocket): boolean {
  return typeof senderOf(socket)?.sendFrame === 'function' && socket.extensions === '';
}

/**
 * Sends `head` followed by `body` as one unmasked text frame; `preEncode` is what
 * {@link canPreEncode} said for the socket.
 */
export function sendTextFrame(socket: WebSocket, head: Buffer, body: Buffer, preEncode: boolean): void {
  const sender = senderOf(socket);
  const length = head.length + body.length;
  if (!preEncode || !sender?.sendFrame || sender._state !== SENDER_IDLE) {
    const data = Buffer.allocUnsafe(length);
    head.copy(data, 0);
    body.copy(data, head.length);
    socket.send(data, TEXT_FRAME);
    return;
  }
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  writeHeader(frame, headerLength, length);
  head.copy(frame, headerLength);
  body.copy(frame, headerLength + head.length);
  sender.sendFrame([frame]);
}

const NEXT_OPEN = Buffer.from('{"id":"');
const NEXT_CLOSE = Buffer.from('","type":"next","payload":');

/**
 * Whether a subscription id can be written into a `next` frame as is (see {@link sendNextFrame}):
 * printable ASCII with nothing JSON would escape. graphql-ws's client sends UUIDs.
 */
export function isPlainId(id: string): boolean {
  return /^[\x20-\x7e]*$/.test(id) && !id.includes('"') && !id.includes('\\');
}

/**
 * Sends `{"id":"<id>","type":"next","payload":` followed by `body` as one text frame, for an
 * id {@link isPlainId} accepted. The prefix is assembled per frame from the id rather than kept
 * encoded per subscription: a Buffer per idle subscriber is ~0.17 KiB, a few more bytes
 * copied per delivery cost next to nothing.
 */
export function sendNextFrame(socket: WebSocket, id: string, body: Buffer, preEncode: boolean): void {
  const sender = senderOf(socket);
  const length = NEXT_OPEN.length + id.length + NEXT_CLOSE.length + body.length;
  let frame: Buffer;
  let at: number;
  const framed = preEncode && sender?.sendFrame && sender._state === SENDER_IDLE;
  if (!framed) {
    frame = Buffer.allocUnsafe(length);
    at = 0;
  } else {
    const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
    frame = Buffer.allocUnsafe(headerLength + length);
    writeHeader(frame, headerLength, length);
    at = headerLength;
  }
  at += NEXT_OPEN.copy(frame, at);
  at += frame.write(id, at, 'latin1');
  at += NEXT_CLOSE.copy(frame, at);
  body.copy(frame, at);
  if (framed) sender.sendFrame!([frame]);
  else socket.send(frame, TEXT_FRAME);
}

function writeHeader(frame: Buffer, headerLength: number, length: number): void {
  frame[0] = FIN_TEXT;
  if (headerLength === 2) {
    frame[1] = length;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
}
