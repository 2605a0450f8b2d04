import type { Logger } from '../domain/ports.js';

/** At most one line per period for a repeating error, so an outage does not flood the log. */
export function throttled(logger: Logger, message: string, periodMs = 5_000): (err: Error) => void {
  let last = 0;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < periodMs) {
      suppressed += 1;
      return;
    }
    logger.warn(message, { error: err.message, suppressed });
    last = now;
    suppressed = 0;
  };
}
