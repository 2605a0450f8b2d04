/** Milliseconds since the epoch from a Redis TIME reply ([seconds, microseconds]). */
export function timeReplyMs(reply: readonly (string | number)[]): number {
  return Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
}
