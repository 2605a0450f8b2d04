import cors from 'cors';
import type { RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { allowedMethods } from './routes/route-table.js';

/**
 * helmet's headers for a JSON API, as OWASP's REST Security Cheat Sheet lists
 * them for every API answer: a policy that lets an answer load nothing and be
 * framed by nobody (CSP `default-src 'none'; frame-ancestors 'none'`,
 * `X-Frame-Options: DENY`), `nosniff`, HSTS, CORP same-origin (no other
 * site's page may embed an answer), and `Cache-Control: no-store`, since most
 * answers carry a user's or an operator's data and none is worth a stale copy
 * in a shared cache.
 *
 * helmet's other defaults govern how a browser treats an HTML document and
 * what it loads (COOP, Origin-Agent-Cluster, Referrer-Policy, DNS prefetch,
 * IE's download prompt, Flash's policy files, the old XSS auditor): a JSON
 * answer has none of that, so they are left to the pages (pageHeaderSetter).
 * Seven headers fewer on every answer: about 290 bytes on the wire and 3 KB of
 * the accept path's 54 KB of allocations per request (sampling heap profile
 * under wrk; see docs/performance.md).
 */
export function securityHeaders(): RequestHandler {
  const set = securityHeaderSetter();
  return (_req, res, next) => {
    set(res);
    next();
  };
}

/** What securityHeaders() sets, as a plain call for a middleware that does several things. */
export function securityHeaderSetter(): (res: Response) => void {
  return headerSetter(apiHeaders());
}

/** The API's headers (see securityHeaders), as name and value. */
function apiHeaders(): [string, string][] {
  return [
    ['Cache-Control', 'no-store'],
    ...helmetHeaders(
      helmet({
        contentSecurityPolicy: {
          useDefaults: false,
          directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
        },
        xFrameOptions: { action: 'deny' },
        crossOriginOpenerPolicy: false,
        originAgentCluster: false,
        referrerPolicy: false,
        xDnsPrefetchControl: false,
        xDownloadOptions: false,
        xPermittedCrossDomainPolicies: false,
        xXssProtection: false,
      }),
    ),
  ];
}

/**
 * For an HTML page and its assets (/docs, /dashboard), on top of what every
 * answer has: the rest of helmet's defaults (the document headers the API's
 * answers leave out) and the page's own Content-Security-Policy.
 */
export function pageHeaderSetter(contentSecurityPolicy: string): (res: Response) => void {
  const everyAnswer = new Set(apiHeaders().map(([name]) => name.toLowerCase()));
  return headerSetter([
    ...helmetHeaders(helmet({ contentSecurityPolicy: false })).filter(
      ([name]) => !everyAnswer.has(name.toLowerCase()),
    ),
    ['Content-Security-Policy', contentSecurityPolicy],
  ]);
}

function headerSetter(headers: readonly (readonly [string, string])[]): (res: Response) => void {
  return (res) => {
    for (const [name, value] of headers) res.setHeader(name, value);
  };
}

/**
 * The headers a helmet middleware sets, read once: they depend on nothing in
 * the request, and helmet's chain of a dozen small middlewares per request was
 * about a tenth of the API process's busy time on the accept path (CPU
 * profile under wrk), against a loop of setHeader calls.
 */
export function helmetHeaders(middleware: ReturnType<typeof helmet>): [string, string][] {
  const set = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) =>
      set.set(name, String(value)),
    removeHeader: (name: string) => set.delete(name),
  };
  let called = false;
  middleware({} as never, recorder as never, () => {
    called = true;
  });
  // helmet is synchronous; were it ever not, this fails at start-up, not per request.
  if (!called) throw new Error('helmet did not finish synchronously');
  return [...set];
}

/** Headers a browser may send cross-origin, and read back from an answer. */
const REQUEST_HEADERS = ['Authorization', 'Content-Type'];
const EXPOSED_HEADERS = [
  'Location',
  'Retry-After',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'RateLimit-Policy',
  'X-Request-Id',
];

/**
 * CORS for the origins in `origins` (exact matches), none when it is empty.
 * An allowed origin's preflight is answered 204 with the methods the route
 * table has for the path; any other origin gets no CORS header at all, so the
 * browser keeps the answer from the page.
 */
export function corsFor(origins: readonly string[]): RequestHandler | undefined {
  if (origins.length === 0) return undefined;
  const allowed = new Set(origins);
  return cors((req, callback) => {
    const origin = req.headers.origin;
    const methods = allowedMethods(req.url?.split('?')[0] ?? '/');
    if (origin === undefined || !allowed.has(origin) || methods.length === 0) {
      callback(null, { origin: false });
      return;
    }
    callback(null, {
      origin,
      methods: [...methods, 'OPTIONS'],
      allowedHeaders: REQUEST_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600,
      optionsSuccessStatus: 204,
    });
  });
}

/**
 * OPTIONS that is not an allowed origin's preflight (no Origin, a refused
 * origin): 204 with `Allow` on a path the route table has (RFC 9110 §9.3.7),
 * and no CORS header; an unknown path falls through to 404.
 */
export const answerOptions: RequestHandler = (req, res, next) => {
  if (req.method !== 'OPTIONS') {
    next();
    return;
  }
  const methods = allowedMethods(req.path);
  if (methods.length === 0) {
    next();
    return;
  }
  res.setHeader('Allow', [...methods, 'OPTIONS'].join(', '));
  res.setHeader('Content-Length', '0');
  res.status(204).end();
};
