/**
 * `inSequence` (src/transport/http.ts) runs /graphql's middlewares as one router layer: it must
 * keep express's semantics for what leaves the sequence. The integration suites drive it through
 * real requests (hostile.test.ts: malformed bodies reach the JSON error handler through it).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { inSequence } from '../../src/transport/http';

const req = {} as Request;
const res = {} as Response;

function run(handlers: RequestHandler[]): Promise<unknown> {
  return new Promise((resolve) => {
    inSequence(handlers)(req, res, ((err?: unknown) => resolve(err ?? 'passed on')) as NextFunction);
  });
}

test('runs every middleware in order, then passes the request on', async () => {
  const order: number[] = [];
  const step =
    (n: number): RequestHandler =>
    (_req, _res, next) => {
      order.push(n);
      next();
    };
  await expect(run([step(1), step(2), step(3)])).resolves.toBe('passed on');
  expect(order).toEqual([1, 2, 3]);
});

test('an error given to next leaves the sequence: later middlewares do not run', async () => {
  const later = jest.fn();
  const boom = new Error('bad body');
  await expect(run([(_q, _s, next) => next(boom), later])).resolves.toBe(boom);
  expect(later).not.toHaveBeenCalled();
});

test('a thrown error and a rejected promise leave the sequence as errors', async () => {
  const thrown = new Error('thrown');
  await expect(
    run([
      () => {
        throw thrown;
      },
    ]),
  ).resolves.toBe(thrown);
  const rejected = new Error('rejected');
  await expect(run([() => Promise.reject(rejected) as unknown as void])).resolves.toBe(rejected);
});

test('a middleware that answers without calling next ends the sequence there', async () => {
  const later = jest.fn();
  let answered = false;
  inSequence([
    () => {
      answered = true;
    },
    later,
  ])(req, res, (() => {
    throw new Error('must not pass on');
  }) as NextFunction);
  await new Promise((r) => setImmediate(r));
  expect(answered).toBe(true);
  expect(later).not.toHaveBeenCalled();
});
