import { createHmac } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/**
 * Writes `count` HS256 tokens, one a line, for users `<prefix>0`, `<prefix>1`, …
 * (each valid for an hour). Signed here with node:crypto rather than jose: a
 * bench mints hundreds of thousands before a run, and the tokens are plain
 * RFC 7519 ones the service verifies with jose.
 */
export async function writeTokens(
  path: string,
  secret: string,
  prefix: string,
  count: number,
): Promise<void> {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const out = createWriteStream(path);
  let chunk = '';
  for (let i = 0; i < count; i += 1) {
    const signed = `${header}.${b64url(JSON.stringify({ sub: `${prefix}${i.toString(36)}`, exp }))}`;
    chunk += `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}
