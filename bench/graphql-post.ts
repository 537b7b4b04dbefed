/** The benchmarks' HTTP client for GraphQL (bench/writes.ts, bench/storm.ts). */
import { request as httpRequest, type Agent as HttpAgent } from 'node:http';

/**
 * One GraphQL POST over `node:http` with a keep-alive agent, as a browser would send it (the
 * session cookie, if any). Not fetch (undici): it shares the machine's 2 cores with the server
 * and cost about 1 ms of CPU per request. `cookie` in the answer is the session cookie the server
 * set, if it set one. With `timeoutMs`, rejects when no answer came that long after the request
 * got a connection (waiting in the agent's queue is not the server's delay).
 */
export function graphqlPost(
  url: string,
  body: unknown,
  options: { agent: HttpAgent; cookie?: string; timeoutMs?: number },
): Promise<{ data?: any; errors?: any[]; cookie?: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    let timer: NodeJS.Timeout | undefined;
    const req = httpRequest(
      url,
      {
        method: 'POST',
        agent: options.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(options.cookie ? { cookie: options.cookie } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const m = /anonymo\.sid=([^;]+)/.exec((res.headers['set-cookie'] ?? []).join(';'));
          try {
            const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: any; errors?: any[] };
            resolve({ data: json.data, errors: json.errors, cookie: m ? `anonymo.sid=${m[1]}` : undefined });
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    const { timeoutMs } = options;
    if (timeoutMs !== undefined) {
      req.once('socket', () => {
        timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
    }
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(payload);
  });
}
