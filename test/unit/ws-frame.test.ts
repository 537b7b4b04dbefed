/**
 * Pre-encoded `next` frames (src/realtime/ws-frame.ts) and the one-listener close hooks
 * (src/realtime/socket-close.ts), on real ws sockets over loopback: a ws client must read
 * every frame exactly as sent, at each header-length boundary and interleaved with ordinary
 * `socket.send` messages.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  canPreEncode,
  isPlainId,
  nextPrefix,
  sendNextFrame,
  sendTextFrame,
  sendTextFrames,
} from '../../src/realtime/ws-frame';
import { addSocketCloseHook, onSocketClose, removeSocketCloseHook } from '../../src/realtime/socket-close';

async function pair(): Promise<{ server: WebSocket; client: WebSocket; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const [server] = (await once(wss, 'connection')) as [WebSocket];
  await once(client, 'open');
  return {
    server,
    client,
    close: async () => {
      client.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

function collect(client: WebSocket, count: number): Promise<Array<{ text: string; binary: boolean }>> {
  const got: Array<{ text: string; binary: boolean }> = [];
  return new Promise((resolve) => {
    client.on('message', (data: Buffer, binary: boolean) => {
      got.push({ text: data.toString(), binary });
      if (got.length === count) resolve(got);
    });
  });
}

describe('pre-encoded text frames', () => {
  it('reach a ws client intact at every header-length boundary, as text, in order with ordinary sends', async () => {
    const { server, client, close } = await pair();
    try {
      expect(canPreEncode(server)).toBe(true);
      const head = Buffer.from('{"id":"é1","type":"next","payload":');
      // Total lengths 125/126 (7-bit vs 16-bit length), 65535/65536 (16-bit vs 64-bit).
      const sizes = [125, 126, 127, 65535, 65536, 200000].map((n) => n - head.length);
      const bodies = sizes.map((n, i) => Buffer.from('x'.repeat(n - 1) + String(i % 10)));
      const got = collect(client, bodies.length * 2);
      bodies.forEach((body, i) => {
        sendTextFrame(server, head, body, true);
        server.send(`plain ${i}`);
      });
      const messages = await got;
      bodies.forEach((body, i) => {
        expect(messages[2 * i]).toEqual({ text: head.toString() + body.toString(), binary: false });
        expect(messages[2 * i + 1]).toEqual({ text: `plain ${i}`, binary: false });
      });
    } finally {
      await close();
    }
  });

  it('falls back to an ordinary send when told the socket cannot take pre-encoded frames', async () => {
    const { server, client, close } = await pair();
    try {
      const got = collect(client, 1);
      sendTextFrame(server, Buffer.from('ab'), Buffer.from('cd'), false);
      expect(await got).toEqual([{ text: 'abcd', binary: false }]);
    } finally {
      await close();
    }
  });
});

describe('next frames assembled from the subscription id', () => {
  it('read as the same JSON as a stringified next message, at every header-length boundary, pre-encoded or not', async () => {
    const { server, client, close } = await pair();
    try {
      const id = '0f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b';
      expect(isPlainId(id)).toBe(true);
      const prefix = `{"id":"${id}","type":"next","payload":`;
      expect(nextPrefix(id).toString()).toBe(prefix);
      const sizes = [125, 126, 65535, 65536].map((n) => n - prefix.length);
      const bodies = sizes.map((n, i) => Buffer.from(`{"data":{"v":"${'x'.repeat(n - 17)}${i}"}}}`));
      const got = collect(client, bodies.length * 2);
      for (const preEncode of [true, false]) bodies.forEach((body) => sendNextFrame(server, id, body, preEncode));
      const messages = await got;
      messages.forEach((m, i) => {
        const body = bodies[i % bodies.length].toString();
        expect(m).toEqual({ text: prefix + body, binary: false });
        expect(JSON.parse(m.text)).toEqual({ id, type: 'next', payload: JSON.parse(body.slice(0, -1)) });
      });
    } finally {
      await close();
    }
  });

  it('accept as plain only ids that JSON writes as they are', () => {
    expect(isPlainId('1')).toBe(true);
    expect(isPlainId('a b~')).toBe(true);
    expect(isPlainId('a"b')).toBe(false);
    expect(isPlainId('a\\b')).toBe(false);
    expect(isPlainId('é')).toBe(false);
    expect(isPlainId('a\nb')).toBe(false);
  });
});

describe('several pre-encoded text frames at once', () => {
  it('reach a ws client intact and in order, between ordinary sends, at every header-length boundary', async () => {
    const { server, client, close } = await pair();
    try {
      const head = Buffer.from('{"id":"ü","type":"next","payload":');
      const sizes = [1, 125, 126, 127, 65535, 65536, 70000].map((n) => Math.max(1, n - head.length));
      const bodies = sizes.map((n, i) => Buffer.from('y'.repeat(n - 1) + String(i)));
      const got = collect(client, bodies.length + 2);
      server.send('before');
      sendTextFrames(server, head, bodies, true);
      server.send('after');
      const messages = await got;
      expect(messages[0]).toEqual({ text: 'before', binary: false });
      bodies.forEach((body, i) => {
        expect(messages[i + 1]).toEqual({ text: head.toString() + body.toString(), binary: false });
      });
      expect(messages[bodies.length + 1]).toEqual({ text: 'after', binary: false });
    } finally {
      await close();
    }
  });

  it('fall back to one ordinary send each, in order, when pre-encoding is off; none for an empty list', async () => {
    const { server, client, close } = await pair();
    try {
      const got = collect(client, 3);
      sendTextFrames(server, Buffer.from('h'), [], false);
      sendTextFrames(server, Buffer.from('h'), [Buffer.from('1'), Buffer.from('2')], false);
      server.send('3');
      expect(await got).toEqual([
        { text: 'h1', binary: false },
        { text: 'h2', binary: false },
        { text: '3', binary: false },
      ]);
    } finally {
      await close();
    }
  });
});

describe('socket close hooks', () => {
  it('take objects as hooks, run with the code and reason, and removable before the close', async () => {
    const { server, client, close } = await pair();
    try {
      const seen: string[] = [];
      const kept = { socketClosed: (code: number, reason: Buffer) => seen.push(`kept ${code} ${String(reason)}`) };
      const removed = { socketClosed: () => seen.push('removed') };
      addSocketCloseHook(server, kept);
      addSocketCloseHook(server, removed);
      removeSocketCloseHook(server, removed);
      const closed = once(server, 'close');
      client.close(4322, 'bye');
      await closed;
      expect(seen).toEqual(['kept 4322 bye']);
    } finally {
      await close();
    }
  });

  it('share one close listener however many hooks a socket has, run each remaining hook once with the code', async () => {
    const { server, client, close } = await pair();
    try {
      const before = server.listenerCount('close');
      const calls: number[] = [];
      const removers: Array<() => void> = [];
      for (let i = 0; i < 20; i++) {
        // Each hook removes itself when it runs, as a subscription that ends detaches.
        removers.push(
          onSocketClose(server, (code) => {
            calls.push(i * 10000 + code);
            removers[i]();
          }),
        );
      }
      expect(server.listenerCount('close')).toBe(before + 1);
      removers[3]();
      const closed = once(server, 'close');
      client.close(4321);
      await closed;
      expect(calls).toEqual(
        Array.from({ length: 20 }, (_, i) => i)
          .filter((i) => i !== 3)
          .map((i) => i * 10000 + 4321),
      );
      expect(server.listenerCount('close')).toBe(before);
    } finally {
      await close();
    }
  });
});
