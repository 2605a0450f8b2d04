import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { requireJson } from './validation.js';

/** The largest body any route reads: a coupon or an issue request is far smaller. */
export const BODY_LIMIT_BYTES = 16 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The two spellings nearly every client sends; anything else takes the general path. */
const PLAIN_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);

function invalidJson(): Error {
  return Object.assign(new Error('the body could not be parsed as JSON'), {
    status: 400,
    type: 'entity.parse.failed',
  });
}

/**
 * JSON is UTF-8 (RFC 8259 §8.1). Left alone, body-parser's decoder turns invalid
 * bytes into U+FFFD and a name sent as Latin-1 would be stored altered; refuse
 * the body instead, as INVALID_JSON.
 */
function requireWellFormedUtf8(_req: unknown, _res: unknown, buf: Buffer, encoding: string): void {
  if (encoding.toLowerCase() !== 'utf-8') return;
  try {
    utf8.decode(buf);
  } catch {
    throw invalidJson();
  }
}

/** The general path: the media type check, then body-parser with the same rules. */
function generalPath(limitBytes: number): RequestHandler[] {
  return [
    requireJson,
    express.json({ limit: limitBytes, strict: true, verify: requireWellFormedUtf8 }),
  ];
}

/** Whitespace as JSON defines it (RFC 8259 §2): space, tab, line feed, carriage return. */
function firstSignificant(text: string): string | undefined {
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] as string;
    if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') return c;
  }
  return undefined;
}

/**
 * Strict JSON from well-formed UTF-8, as the general path reads it: an empty
 * body is `{}`, the top level must be an object or an array, and a byte
 * sequence that is not UTF-8 is refused rather than replaced by U+FFFD.
 */
export function parseJsonBody(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw invalidJson();
  }
  if (text.length === 0) return {};
  const first = firstSignificant(text);
  if (first !== '{' && first !== '[') throw invalidJson();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalidJson();
  }
}

/**
 * Reads JSON bodies. The request every client sends on the hot path (declared
 * `application/json`, a Content-Length within the limit, no Content-Encoding
 * or Transfer-Encoding) is read here directly: one decode and one parse, none
 * of the general parser's per-request header parsing, charset lookups and
 * stream bookkeeping. Every other request goes through `general` (by default
 * the media type check and body-parser, under the same limit), so unusual
 * requests keep exactly their answers.
 */
export function jsonBody(
  limitBytes: number,
  general: readonly RequestHandler[] = generalPath(limitBytes),
): RequestHandler {
  const runGeneral = (req: Request, res: Response, next: NextFunction, at = 0): void => {
    const handler = general[at];
    if (!handler) {
      next();
      return;
    }
    void handler(req, res, (err?: unknown) => {
      if (err !== undefined) next(err);
      else runGeneral(req, res, next, at + 1);
    });
  };

  return (req, res, next) => {
    const headers = req.headers;
    const declared = headers['content-length'];
    const length = declared !== undefined && /^\d{1,9}$/.test(declared) ? Number(declared) : -1;
    if (
      !PLAIN_TYPES.has(headers['content-type'] ?? '') ||
      length < 0 ||
      length > limitBytes ||
      headers['content-encoding'] !== undefined ||
      headers['transfer-encoding'] !== undefined
    ) {
      runGeneral(req, res, next);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', cleanup);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    };
    const onEnd = () => {
      cleanup();
      if (received !== length) {
        next(
          Object.assign(new Error('request size did not match content length'), { status: 400 }),
        );
        return;
      }
      try {
        req.body = parseJsonBody(
          chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
        );
      } catch (err) {
        next(err);
        return;
      }
      next();
    };
    const onError = (err: Error) => {
      cleanup();
      next(Object.assign(err, { status: 400 }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    // The client went away mid-body: nobody is left to answer.
    req.on('close', cleanup);
  };
}
