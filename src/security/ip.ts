/**
 * The client address of a request, the same way for HTTP and the WebSocket upgrade, and the
 * key it is rate limited under.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import proxyaddr from 'proxy-addr';

export type TrustFn = (addr: string, i: number) => boolean;

/** The client's address, honouring express's "trust proxy" setting (pass `app.get('trust proxy fn')`). */
export function clientIp(req: IncomingMessage, trust: TrustFn): string {
  try {
    return proxyaddr(req, trust);
  } catch {
    return req.socket.remoteAddress ?? '';
  }
}

/**
 * The rate-limit key of an address. An IPv6 host usually has a whole /64 to itself, so
 * limiting single IPv6 addresses would limit nothing: the /64 is the key.
 */
export function ipKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (!isIPv6(ip)) return ip;
  const [head, tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
