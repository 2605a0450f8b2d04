/**
 * Something a bench tool needs is missing (a store that does not answer, wrk not
 * installed): its message says what to start, install or set.
 */
export class SetupError extends Error {}

/**
 * What a bench tool prints when it fails: the message alone when it says what to do,
 * the whole error (stack and cause) for anything unexpected.
 */
export function describeFailure(err: unknown): string {
  if (err instanceof SetupError) return err.message;
  if (!(err instanceof Error)) return String(err);
  const cause =
    err.cause instanceof Error ? `\ncaused by: ${err.cause.stack ?? err.cause.message}` : '';
  return `${err.stack ?? err.message}${cause}`;
}
