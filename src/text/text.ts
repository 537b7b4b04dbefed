/**
 * The rules for every text a user writes (messages now; titles and the like as they come),
 * so that what is stored, sent live and shown later is the same string, and no text can
 * hide itself, reorder its neighbours on screen or smear over other lines:
 *
 * - ill-formed UTF-16 (a lone surrogate) is refused: it cannot be stored as given, so the
 *   live copy and the stored one would differ;
 * - newlines unified, control characters except tab and newline removed, line and paragraph
 *   separators (U+2028, U+2029) made newlines;
 * - bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) removed:
 *   unbalanced, they reverse the text after them in every client that shows it;
 * - normalised to NFC, trimmed;
 * - at least one visible character (not only spaces, format or invisible filler characters);
 * - at most {@link MAX_MARKS_PER_GRAPHEME} combining marks on one character ("Zalgo" text
 *   that draws over the lines around it).
 */
import { BadUserInputError } from '../errors';

/** Enough for every script's real stacks (Vietnamese, Indic, Tibetan) and keycap emoji. */
export const MAX_MARKS_PER_GRAPHEME = 8;

// C0/C1 controls except tab and newline. Other format characters (Cf) stay: emoji sequences
// need U+200D and some scripts need U+200C.
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;
const SEPARATORS = /[\u2028\u2029]/g;
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;
// A character that draws something: not a space, control, format character, combining mark,
// or one of the blank "letters" (Hangul fillers, braille blank) used to fake empty names.
const VISIBLE = /[^\p{White_Space}\p{Cc}\p{Cf}\p{M}\p{Zl}\p{Zp}\u115F\u1160\u2800\u3164\uFFA0]/u;
const MARK = /\p{M}/u;
const MARKS = /\p{M}/gu;
const LONE_SURROGATE = /\p{Cs}/u;

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

export interface TextRules {
  /** The argument's name, for error messages and `extensions.field`. */
  field: string;
  /** Longest allowed result, in code points. */
  maxLength: number;
  /** Keep newlines (message text) or turn every line break into a space (single-line titles). Default true. */
  multiline?: boolean;
}

/** The text as it is stored and shown, or BAD_USER_INPUT saying which rule it broke. */
export function cleanUserText(input: unknown, rules: TextRules): string {
  const { field, maxLength } = rules;
  if (typeof input !== 'string') throw new BadUserInputError(`${field} must be a string`, field);
  requireWellFormed(input, field);
  let text = input
    .replace(/\r\n?/g, '\n')
    .replace(SEPARATORS, '\n')
    .replace(CONTROL, '')
    .replace(BIDI_CONTROLS, '')
    .normalize('NFC')
    .trim();
  if (rules.multiline === false) text = text.replace(/\s*\n\s*/g, ' ');
  if (text === '') throw new BadUserInputError(`${field} must not be empty`, field);
  if (!VISIBLE.test(text)) throw new BadUserInputError(`${field} must contain a visible character`, field);
  // Counted before segmenting: a long text is refused without the cost of splitting it.
  let length = 0;
  for (let i = 0; i < text.length && length <= maxLength; i++, length++) {
    if (text.charCodeAt(i) >= 0xd800 && text.charCodeAt(i) <= 0xdbff) i++; // a surrogate pair is one character
  }
  if (length > maxLength) throw new BadUserInputError(`${field} must be at most ${maxLength} characters`, field);
  if (MARK.test(text)) {
    for (const { segment } of segmenter.segment(text)) {
      if (segment.length > MAX_MARKS_PER_GRAPHEME && (segment.match(MARKS)?.length ?? 0) > MAX_MARKS_PER_GRAPHEME) {
        throw new BadUserInputError(
          `${field} has more than ${MAX_MARKS_PER_GRAPHEME} combining marks on one character`,
          field,
        );
      }
    }
  }
  return text;
}

/** Refuses ill-formed strings in identifiers (clientId and the like), which are kept as given otherwise. */
export function requireWellFormed(input: string, field: string): void {
  if (LONE_SURROGATE.test(input)) {
    throw new BadUserInputError(`${field} is not well-formed Unicode (it contains a lone surrogate)`, field);
  }
}
