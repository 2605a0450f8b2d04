import type { Request, RequestHandler, Response } from 'express';
import { USER_ID_PATTERN } from '../domain/issue-request.js';
import type { LimitState, QuotaReading, RateLimiter } from '../domain/ports.js';
import type { Admission } from '../domain/use-cases/submit-issue-request.js';
import { sendProblem } from './problem.js';

/** The limits in force; an absent one is off. */
export interface Limiters {
  readonly ip?: RateLimiter;
  readonly accept?: RateLimiter;
  readonly status?: RateLimiter;
  readonly authFailure?: RateLimiter;
}

export type UserLimitKind = 'accept' | 'status';

export interface Limits {
  /** Mounted before every route: refuses addresses over the per-address or failed-authentication limit. */
  readonly ipLimit: RequestHandler;
  /**
   * Mounted on the accept and status routes after identity (and, on accept, the body).
   * Status: takes the per-user count and the per-address count in one pipeline. Accept:
   * refuses a client already blocked in memory, and leaves both counts to the accept
   * script (`admission`), so a guarded request still costs one Redis round trip.
   */
  userLimit(kind: UserLimitKind): RequestHandler;
  /**
   * The counts the accept route's request is still owed, for the accept script to take
   * (see `SubmitIssueRequest`); its readings set the RateLimit headers, and a refusal
   * `Retry-After` as well. Undefined when there are none.
   */
  admission(res: Response): Admission | undefined;
  /**
   * Takes through the limiters the counts a request is still owed because it never
   * reached the accept script (a bad body, an unknown coupon, Redis down): it is
   * answered anyway, and its count refuses the client's next ones.
   */
  chargeUnadmitted(res: Response): void;
  /** A middleware for routes that authenticate: refuses an address over the failed-authentication limit. */
  readonly authFailureLimit: RequestHandler;
  /** Call on every failed authentication: counts it against the client's address. */
  authFailure(req: Request): void;
}

export interface LimitsOptions {
  /**
   * Requests whose per-address count is left to `userLimit` (the routes that mount it):
   * taken there together with the per-user count, the two leave in one pipeline.
   */
  readonly deferIp?: (req: Request) => boolean;
  /** A limiter failed with no fallback: the request is let through (fail open). */
  readonly onError?: (err: unknown) => void;
}

// Where ipLimit leaves the address whose count userLimit takes.
const IP_DEFERRED = 'rateLimitDeferredAddress';
// Where the accept route's userLimit leaves the counts the accept script takes.
const OWED = 'rateLimitOwed';

/** One count a request is owed: which limit, and whom it counts. */
interface Owed {
  readonly limiter: RateLimiter;
  readonly subject: string;
  readonly refusal: string;
}

const FROM_ADDRESS = 'too many requests from this address';
const FOR_USER = 'too many requests for this user';

/** The caller the identity middleware leaves on `res.locals.caller`, as far as limits need it. */
interface CallerLike {
  readonly kind: string;
  readonly userId?: unknown;
}

/**
 * The key a client address is counted under: an IPv4 address as it is, an
 * IPv6 address by its /64 (one subscriber's prefix: a client can draw any
 * address inside it at will), an IPv4-mapped IPv6 address as the IPv4 one.
 */
export function addressKey(address: string): string {
  if (!address.includes(':')) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  const [head = '', tail] = address.toLowerCase().split('%')[0]!.split('::') as [string, string?];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

function clientAddress(req: Request): string {
  // Undefined only once the socket is gone; such a request is not answered anyway.
  return addressKey(req.ip ?? 'unknown');
}

/**
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and
 * `RateLimit-Policy` as in draft-ietf-httpapi-ratelimit-headers-06 (what
 * express-rate-limit calls `draft-6`): separate fields most clients and
 * proxies already read.
 */
function setRateLimitHeaders(res: Response, state: LimitState): void {
  res.setHeader('RateLimit-Limit', String(state.limit));
  res.setHeader('RateLimit-Remaining', String(state.remaining));
  res.setHeader('RateLimit-Reset', String(Math.max(1, Math.ceil(state.resetMs / 1000))));
  res.setHeader('RateLimit-Policy', `${state.limit};w=${state.windowS}`);
}

/** The headers of a refusal under `state`: nothing remains, and when to come back. */
function refusalHeaders(res: Response, state: LimitState): void {
  setRateLimitHeaders(res, { ...state, remaining: 0 });
  res.setHeader('Retry-After', String(Math.max(1, Math.ceil(state.resetMs / 1000))));
}

function tooMany(res: Response, state: LimitState, detail: string): void {
  refusalHeaders(res, state);
  sendProblem(res, 'RATE_LIMITED', detail);
}

/** A limit that refuses from memory for `ms` more, with no count taken. */
function blocked(limiter: RateLimiter, ms: number): LimitState {
  return {
    allowed: false,
    limit: limiter.limit,
    windowS: limiter.windowS,
    remaining: 0,
    resetMs: ms,
  };
}

/** Of several limits that all admitted the request, the one closest to refusing. */
function tightest(states: readonly LimitState[]): LimitState {
  return states.reduce((a, b) =>
    b.remaining < a.remaining || (b.remaining === a.remaining && b.resetMs > a.resetMs) ? b : a,
  );
}

function userOf(kind: UserLimitKind, req: Request, res: Response): string | undefined {
  const caller = res.locals.caller as CallerLike | undefined;
  if (caller !== undefined) {
    return caller.kind === 'user' && typeof caller.userId === 'string' ? caller.userId : undefined;
  }
  if (kind !== 'accept') return undefined;
  // No identity configured: the body names the user. A malformed one is refused by the handler.
  const userId = (req.body as { userId?: unknown } | undefined)?.userId;
  return typeof userId === 'string' && USER_ID_PATTERN.test(userId) ? userId : undefined;
}

export function createLimits(limiters: Limiters, options: LimitsOptions = {}): Limits {
  const { ip, authFailure } = limiters;
  const deferIp = options.deferIp ?? (() => false);
  const onError = options.onError ?? (() => undefined);
  const failures = 'too many failed authentications from this address; try again later';

  const refusedForFailures = (address: string, res: Response): boolean => {
    if (!authFailure) return false;
    const ms = authFailure.blockedMs(address);
    if (ms === 0) return false;
    tooMany(res, blocked(authFailure, ms), failures);
    return true;
  };

  const ipLimit: RequestHandler = (req, res, next) => {
    const address = clientAddress(req);
    if (refusedForFailures(address, res)) return;
    if (!ip) {
      next();
      return;
    }
    if (deferIp(req)) {
      // A flood from one address is still refused here, from memory, before any work.
      const ms = ip.blockedMs(address);
      if (ms > 0) {
        tooMany(res, blocked(ip, ms), FROM_ADDRESS);
        return;
      }
      res.locals[IP_DEFERRED] = address;
      next();
      return;
    }
    ip.consume(address).then(
      (state) => {
        if (!state.allowed) {
          tooMany(res, state, FROM_ADDRESS);
          return;
        }
        setRateLimitHeaders(res, state);
        next();
      },
      (err: unknown) => {
        onError(err);
        next();
      },
    );
  };

  const userLimit = (kind: UserLimitKind): RequestHandler => {
    const perUser = limiters[kind];
    if (kind === 'accept') {
      return (req, res, next) => {
        const address = res.locals[IP_DEFERRED] as string | undefined;
        const user = perUser ? userOf(kind, req, res) : undefined;
        const owed: Owed[] = [];
        if (ip && address !== undefined) {
          owed.push({ limiter: ip, subject: address, refusal: FROM_ADDRESS });
        }
        if (perUser && user !== undefined) {
          // A user over the limit is refused from memory until its window ends.
          const ms = perUser.blockedMs(user);
          if (ms > 0) {
            tooMany(res, blocked(perUser, ms), FOR_USER);
            return;
          }
          owed.push({ limiter: perUser, subject: user, refusal: FOR_USER });
        }
        if (owed.length > 0) res.locals[OWED] = owed;
        next();
      };
    }
    return (req, res, next) => {
      const address = res.locals[IP_DEFERRED] as string | undefined;
      const user = perUser ? userOf(kind, req, res) : undefined;
      const checks: Promise<[string, LimitState]>[] = [];
      // Both issued in the same turn of the event loop: one pipeline on the API connection.
      if (ip && address !== undefined) {
        checks.push(ip.consume(address).then((s) => [FROM_ADDRESS, s]));
      }
      if (perUser && user !== undefined) {
        checks.push(perUser.consume(user).then((s) => [FOR_USER, s]));
      }
      if (checks.length === 0) {
        next();
        return;
      }
      Promise.all(checks).then(
        (results) => {
          const refused = results.find(([, s]) => !s.allowed);
          if (refused) {
            tooMany(res, refused[1], refused[0]);
            return;
          }
          setRateLimitHeaders(res, tightest(results.map(([, s]) => s)));
          next();
        },
        (err: unknown) => {
          onError(err);
          next();
        },
      );
    };
  };

  const admission = (res: Response): Admission | undefined => {
    const owed = res.locals[OWED] as Owed[] | undefined;
    if (owed === undefined) return undefined;
    return {
      quotas: owed.map(({ limiter, subject, refusal }) => ({
        name: limiter.name,
        subject,
        points: limiter.limit,
        windowS: limiter.windowS,
        refusal,
      })),
      onReadings(readings: readonly QuotaReading[], over) {
        res.locals[OWED] = undefined;
        const states = owed.map(({ limiter, subject }, i): LimitState => {
          const { consumed, resetMs } = readings[i] ?? { consumed: 0, resetMs: 0 };
          const allowed = consumed <= limiter.limit;
          // Over: this process refuses the client from memory until the window ends.
          if (!allowed) limiter.block(subject, resetMs);
          return {
            allowed,
            limit: limiter.limit,
            windowS: limiter.windowS,
            remaining: Math.max(0, limiter.limit - consumed),
            resetMs,
          };
        });
        if (over === undefined) {
          setRateLimitHeaders(res, tightest(states));
          return;
        }
        const refused = states[owed.findIndex((o) => o.limiter.name === over.name)] ?? states[0]!;
        refusalHeaders(res, refused);
      },
    };
  };

  const chargeUnadmitted = (res: Response): void => {
    const owed = res.locals[OWED] as Owed[] | undefined;
    if (owed === undefined) return;
    res.locals[OWED] = undefined;
    for (const { limiter, subject } of owed) limiter.consume(subject).catch(onError);
  };

  return {
    ipLimit,
    userLimit,
    admission,
    chargeUnadmitted,
    authFailureLimit: (req, res, next) => {
      if (!refusedForFailures(clientAddress(req), res)) next();
    },
    authFailure(req) {
      authFailure?.consume(clientAddress(req)).catch(onError);
    },
  };
}
