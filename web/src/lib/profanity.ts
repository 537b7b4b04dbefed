import {
  RegExpMatcher,
  TextCensor,
  asteriskCensorStrategy,
  englishDataset,
  englishRecommendedTransformers,
  keepStartCensorStrategy,
} from 'obscenity';
import { createContext, useCallback, useContext, useState } from 'react';

/**
 * The optional profanity mask (obscenity's English dataset, with its transformers for leet
 * speak, confusable characters and repeated letters): applied when a message is shown, never
 * to what is sent or stored. On by default; each person may turn it off, remembered in
 * localStorage.
 */
let censorText: ((text: string) => string) | undefined;

function censor(text: string): string {
  if (!censorText) {
    const matcher = new RegExpMatcher({ ...englishDataset.build(), ...englishRecommendedTransformers });
    const censor = new TextCensor().setStrategy(keepStartCensorStrategy(asteriskCensorStrategy()));
    censorText = (t) => {
      const matches = matcher.getAllMatches(t, true);
      return matches.length ? censor.applyTo(t, matches) : t;
    };
  }
  return censorText(text);
}

const STORAGE_KEY = 'anonymo.profanityMask';

function storedMask(): boolean {
  try {
    return localStorage.getItem(STORAGE_KEY) !== 'off';
  } catch {
    return true;
  }
}

export interface ProfanityMask {
  on: boolean;
  setOn: (on: boolean) => void;
  /** The text as it should be shown. */
  show: (text: string) => string;
}

export function useProfanityMaskState(): ProfanityMask {
  const [on, setOnState] = useState(storedMask);
  const setOn = useCallback((next: boolean) => {
    try {
      localStorage.setItem(STORAGE_KEY, next ? 'on' : 'off');
    } catch {
      // Storage refused (private mode): the choice lasts for this page.
    }
    setOnState(next);
  }, []);
  const show = useCallback((text: string) => (on ? censor(text) : text), [on]);
  return { on, setOn, show };
}

export const ProfanityMaskContext = createContext<ProfanityMask>({ on: false, setOn: () => undefined, show: (t) => t });

/** Shows text through the person's profanity mask. */
export function useShowText(): (text: string) => string {
  return useContext(ProfanityMaskContext).show;
}

export function useProfanityMask(): ProfanityMask {
  return useContext(ProfanityMaskContext);
}
