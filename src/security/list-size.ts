import { BadUserInputError } from '../errors';

/** A list field's `first` argument: absent means `max`; outside 0..max is BAD_USER_INPUT. */
export function listSize(first: number | null | undefined, max: number, field = 'first'): number {
  if (first === null || first === undefined) return max;
  if (!Number.isInteger(first) || first < 0 || first > max) {
    throw new BadUserInputError(`${field} must be an integer from 0 to ${max}`, field);
  }
  return first;
}
