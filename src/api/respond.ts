import type { Response } from 'express';

/**
 * What `res.status(s).json(body)` sends, byte for byte, without the work
 * Express repeats on every call (parsing and re-formatting the Content-Type it
 * just set, looking up the charset, checking freshness for a response that is
 * never cached). Used on the two endpoints that carry nearly all the traffic.
 */
export function sendJson(
  res: Response,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  // One setHeader per header: writeHead(status, object) on a response that already has
  // headers copies the object and sets its fields one by one anyway.
  for (const name in headers) res.setHeader(name, headers[name] as string);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.writeHead(status);
  res.end(text);
}
