/**
 * Reading a server's /metrics as a scraper does. Tests use the subscription gauge as the sync
 * point "the server has attached my subscriptions" before they publish, instead of sleeping.
 */
import { waitForValue } from './wait';

/** Reads one sample from Prometheus' text format: the line of `name` with exactly these labels. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(have).length !== Object.keys(labels).length) continue;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** A server whose metrics can be scraped: on its METRICS_PORT listener (the tests' servers use a free port). */
export interface Scrapable {
  url: string;
  metricsUrl?: string;
}

/** The text of `GET /metrics` on the server's metrics listener. */
export async function scrape(server: Scrapable): Promise<string> {
  if (!server.metricsUrl) throw new Error('this server serves no metrics (METRICS_PORT=off)');
  const res = await fetch(server.metricsUrl);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Waits until a sample satisfies `pred`; resolves with the whole scrape it was seen in. */
export async function waitForSample(
  server: Scrapable,
  name: string,
  labels: Record<string, string>,
  pred: (v: number) => boolean,
  timeout = 5000,
): Promise<string> {
  let text = '';
  await waitForValue(
    async () => sample((text = await scrape(server)), name, labels),
    (v) => v !== undefined && pred(v),
    { timeout, interval: 20, what: `${name}${JSON.stringify(labels)}` },
  );
  return text;
}

/**
 * Waits until the server has exactly `count` subscriptions attached (joined to their channel,
 * so an event published from now on reaches them). Tests of one file share a server and run
 * one after another, so a test starts from 0 once the previous one's sockets are gone: see
 * `noSubscriptionsLeft`.
 */
export async function subscriptionsAttached(server: Scrapable, count: number, timeout = 5000): Promise<void> {
  await waitForSample(server, 'anonymo_subscriptions_active', {}, (v) => v === count, timeout);
}

/** After a test: every subscription it opened has been detached on the server. */
export function noSubscriptionsLeft(server: Scrapable): Promise<void> {
  return subscriptionsAttached(server, 0);
}
