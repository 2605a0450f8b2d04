import { randomBytes } from 'node:crypto';

export const NONCE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * 248 = 4 × 62: a byte below it maps to each of the 62 characters exactly four
 * ways. Bytes from 248 up are dropped (rejection sampling); taken modulo 62
 * they would make A-H one and a quarter times as likely as the rest.
 */
const ACCEPT_BELOW = 256 - (256 % NONCE_ALPHABET.length);

/**
 * Draws nonces of `length` characters from `draw`, `poolBytes` at a time: one
 * system call per few hundred nonces instead of one each. About 3% of bytes
 * are dropped, so a pool lasts a little less than poolBytes / length nonces.
 */
export function nonceSource(
  length: number,
  draw: (bytes: number) => Buffer = randomBytes,
  poolBytes = 4096,
): () => string {
  let pool: Buffer = Buffer.alloc(0);
  let offset = 0;
  return () => {
    let out = '';
    while (out.length < length) {
      if (offset >= pool.length) {
        pool = draw(poolBytes);
        offset = 0;
      }
      const byte = pool[offset] as number;
      offset += 1;
      if (byte < ACCEPT_BELOW) out += NONCE_ALPHABET[byte % NONCE_ALPHABET.length];
    }
    return out;
  };
}
