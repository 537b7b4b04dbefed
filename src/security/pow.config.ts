/**
 * Configuration of proof of work for new identities (security/pow.ts). Declared here and spread
 * into config.ts, so the environment is still read and validated in one place.
 */
import { z } from 'zod';
import { int } from '../env';

export type PowMode = 'off' | 'on' | 'auto';

/** The environment variables of this module (spread into config.ts's schema). */
export const powEnv = {
  POW_MODE: z.enum(['off', 'on', 'auto'], { error: 'POW_MODE must be off, on or auto' }).default('auto'),
  POW_DIFFICULTY: int('POW_DIFFICULTY', 1000, 100_000_000).default(100_000),
};

type PowEnv = z.output<z.ZodObject<typeof powEnv>>;

export interface PowConfig {
  /**
   * `POW_MODE` [auto]: when a new identity (first visit, or `resetIdentity`) needs a solved
   * ALTCHA challenge. `off`: never (over the identity budget is RATE_LIMITED); `on`: always;
   * `auto`: only once the network's identity budget (`RATE_LIMIT_IDENTITIES_IP`) is spent,
   * instead of refusing.
   */
  mode: PowMode;
  /**
   * `POW_DIFFICULTY` [100000]: the largest number of SHA-256 attempts a challenge takes at its
   * base difficulty (the secret counter is drawn between half of it and it: on average 3/4).
   * Over the budget it doubles for every further budget's worth of identities, up to 64 times.
   */
  difficulty: number;
}

export function powConfig(e: PowEnv): PowConfig {
  return { mode: e.POW_MODE, difficulty: e.POW_DIFFICULTY };
}
