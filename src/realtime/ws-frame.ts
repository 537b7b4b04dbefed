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

/**
 * The socket's Sender when a pre-encoded frame may go to it now (`preEncode`, and the Sender
 * idle: a busy one queues `socket.send`s, which a direct frame would overtake).
 */
function idleSender(socket: WebSocket, preEncode: boolean): Required<WsSender> | undefined {
  const sender = senderOf(socket);
  if (!preEncode || !sender?.sendFrame || sender._state !== SENDER_IDLE) return undefined;
  return sender as Required<WsSender>;
}

/** The size of an unmasked frame's header for a payload of `length` bytes. */
const headerLength = (length: number) => (length < 126 ? 2 : length < 65536 ? 4 : 10);

/** Whether frames for this socket may be pre-encoded (checked once per subscription). */
export function canPreEncode(socket: WebSocket): boolean {
  return typeof senderOf(socket)?.sendFrame === 'function' && socket.extensions === '';
}

/**
 * Sends `head` followed by `body` as one unmasked text frame; `preEncode` is what
 * {@link canPreEncode} said for the socket.
 */
export function sendTextFrame(socket: WebSocket, head: Buffer, body: Buffer, preEncode: boolean): void {
  const sender = idleSender(socket, preEncode);
  if (!sender) {
    socket.send(joined(head, body), TEXT_FRAME);
    return;
  }
  const frame = Buffer.allocUnsafe(frameLength(head, body));
  writeFrame(frame, 0, head, body);
  sender.sendFrame([frame]);
}

/**
 * Sends several text frames, each `head` followed by one of `bodies`, in order, as one write:
 * a replay of 50 messages is one system call instead of 50. The frames go out back to back
 * in one buffer, so nothing can come between them; anything sent before or after keeps its
 * place (ws's Sender writes in call order when idle, and queues in call order when not, where
 * this falls back to one `socket.send` per frame).
 */
export function sendTextFrames(socket: WebSocket, head: Buffer, bodies: readonly Buffer[], preEncode: boolean): void {
  if (bodies.length === 0) return;
  const sender = idleSender(socket, preEncode);
  if (!sender) {
    for (const body of bodies) socket.send(joined(head, body), TEXT_FRAME);
    return;
  }
  let size = 0;
  for (const body of bodies) size += frameLength(head, body);
  const frames = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const body of bodies) offset = writeFrame(frames, offset, head, body);
  sender.sendFrame([frames]);
}

function joined(head: Buffer, body: Buffer): Buffer {
  const data = Buffer.allocUnsafe(head.length + body.length);
  head.copy(data, 0);
  body.copy(data, head.length);
  return data;
}

/** The length of `head` + `body` as one unmasked frame, its header included. */
function frameLength(head: Buffer, body: Buffer): number {
  const length = head.length + body.length;
  return headerLength(length) + length;
}

/** Writes `head` + `body` as one unmasked text frame into `out` at `offset`; returns the offset after it. */
function writeFrame(out: Buffer, offset: number, head: Buffer, body: Buffer): number {
  const at = writeHeader(out, offset, head.length + body.length);
  head.copy(out, at);
  body.copy(out, at + head.length);
  return at + head.length + body.length;
}

/** Writes the header of an unmasked text frame of `length` bytes at `offset`; returns the offset after it. */
function writeHeader(out: Buffer, offset: number, length: number): number {
  out[offset] = FIN_TEXT;
  if (length < 126) {
    out[offset + 1] = length;
    return offset + 2;
  }
  if (length < 65536) {
    out[offset + 1] = 126;
    out.writeUInt16BE(length, offset + 2);
    return offset + 4;
  }
  out[offset + 1] = 127;
  out.writeUInt32BE(Math.floor(length / 2 ** 32), offset + 2);
  out.writeUInt32BE(length >>> 0, offset + 6);
  return offset + 10;
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

/** `{"id":"<id>","type":"next","payload":` for a plain id, encoded (a replay page's head: not kept). */
export function nextPrefix(id: string): Buffer {
  return Buffer.concat([NEXT_OPEN, Buffer.from(id, 'latin1'), NEXT_CLOSE]);
}

/**
 * Sends `{"id":"<id>","type":"next","payload":` followed by `body` as one text frame, for an
 * id {@link isPlainId} accepted. The prefix is assembled per frame from the id rather than kept
 * encoded per subscription: a Buffer per idle subscriber is ~0.17 KiB, a few more bytes
 * copied per delivery cost next to nothing.
 */
export function sendNextFrame(socket: WebSocket, id: string, body: Buffer, preEncode: boolean): void {
  const sender = idleSender(socket, preEncode);
  const length = NEXT_OPEN.length + id.length + NEXT_CLOSE.length + body.length;
  const frame = Buffer.allocUnsafe((sender ? headerLength(length) : 0) + length);
  let at = sender ? writeHeader(frame, 0, length) : 0;
  at += NEXT_OPEN.copy(frame, at);
  at += frame.write(id, at, 'latin1');
  at += NEXT_CLOSE.copy(frame, at);
  body.copy(frame, at);
  if (sender) sender.sendFrame([frame]);
  else socket.send(frame, TEXT_FRAME);
}
