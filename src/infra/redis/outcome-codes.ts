import type { Outcome } from '../../domain/issue-request.js';

/** The small codes the Lua scripts use for outcomes, translated in this one place. */
const BY_CODE: Record<number, Outcome> = {
  1: 'ISSUED',
  2: 'SOLD_OUT',
  3: 'ALREADY_ISSUED',
  4: 'EVENT_CLOSED',
};

const BY_OUTCOME: Record<Outcome, number> = {
  ISSUED: 1,
  SOLD_OUT: 2,
  ALREADY_ISSUED: 3,
  EVENT_CLOSED: 4,
};

export function outcomeFromCode(code: unknown): Outcome {
  const outcome = BY_CODE[Number(code)];
  if (!outcome) throw new Error(`unknown outcome code ${String(code)}`);
  return outcome;
}

export function outcomeToCode(outcome: Outcome): number {
  return BY_OUTCOME[outcome];
}
