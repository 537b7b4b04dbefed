/** zod building blocks for environment variables, shared by config.ts and security.config.ts. */
import { z } from 'zod';

/** An integer variable within [min, max]; the messages name the variable. */
export const int = (name: string, min: number, max: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int(`${name} must be an integer`)
    .min(min, `${name} must be at least ${min}`)
    .max(max, `${name} must be at most ${max}`);

/** true/false (also 1/0, yes/no). */
export const bool = (name: string) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], {
      error: `${name} must be true or false`,
    })
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** An empty variable (`FOO=`) means unset. */
export const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);
