import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../domain/ports.js';
import type { Caller } from './caller.js';
import { sendProblem } from './problem.js';
import { HTTP_REQUEST_ID, httpRequestIdOf } from './request-id.js';
import { InvalidTokenError, type TokenVerifier } from './token-verifier.js';

export interface IdentityOptions {
  /** Verifies users' tokens; null when no identity is configured (the user is the body's userId). */
  readonly verifier: TokenVerifier | null;
  readonly adminToken: string;
  readonly logger: Logger;
  /** Called on every failed authentication (a limiter counts them per client). */
  readonly onAuthFailure?: (req: Request) => void;
}

/** The routes' guards; each stores the caller it accepted on `res.locals.caller`. */
export interface Identity {
  /** Accept: a user's token (with no identity configured, anyone: the body names the user). */
  readonly user: RequestHandler;
  /** Status: a user's token, an operator's token or ADMIN_TOKEN (with no identity, anyone). */
  readonly userOrOperator: RequestHandler;
  /** Operator routes: ADMIN_TOKEN or an operator's token; every action (not a read) is audited. */
  readonly operator: RequestHandler;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The scheme is case-insensitive and may be followed by several spaces (RFC 9110 §11.1, §11.4). */
const BEARER = /^Bearer +(\S+)$/i;

export function callerOf(res: Response): Caller | undefined {
  return res.locals.caller as Caller | undefined;
}

export function createIdentity(options: IdentityOptions): Identity {
  const { verifier, logger } = options;
  const expectedAdmin = digest(options.adminToken);
  const isAdminToken = (token: string) => timingSafeEqual(digest(token), expectedAdmin);

  /** An audit line: who (as far as known), what, which event, the outcome; never the token. */
  const audit = (
    req: Request,
    res: Response,
    event: string,
    outcome: string,
    extra: Record<string, unknown>,
  ) =>
    logger.info('audit', {
      audit: true,
      event,
      outcome,
      [HTTP_REQUEST_ID]: httpRequestIdOf(res),
      method: req.method,
      path: req.originalUrl,
      ip: req.ip,
      ...extra,
    });

  const refuse = (
    req: Request,
    res: Response,
    code: 'UNAUTHORIZED' | 'INVALID_TOKEN',
    reason: string,
    detail = code === 'UNAUTHORIZED'
      ? 'a bearer token is required: Authorization: Bearer <token>'
      : 'the bearer token is not valid',
  ) => {
    audit(req, res, 'authentication', 'failed', { code, reason });
    options.onAuthFailure?.(req);
    sendProblem(res, code, detail);
  };

  const bearer = (req: Request): string | undefined => {
    const header = req.headers.authorization;
    return header === undefined ? undefined : (BEARER.exec(header)?.[1] ?? '');
  };

  /** Verifies a token; answers the failure itself and resolves undefined then. */
  const verified = async (req: Request, res: Response, token: string) => {
    try {
      return await (verifier as TokenVerifier).verify(token);
    } catch (err) {
      if (!(err instanceof InvalidTokenError)) throw err;
      refuse(req, res, 'INVALID_TOKEN', err.reason);
      return undefined;
    }
  };

  const user: RequestHandler = !verifier
    ? (_req, _res, next) => next()
    : async (req, res, next) => {
        const token = bearer(req);
        if (token === undefined) return refuse(req, res, 'UNAUTHORIZED', 'no Authorization header');
        if (token === '') return refuse(req, res, 'INVALID_TOKEN', 'not a Bearer credential');
        const who = await verified(req, res, token);
        if (!who) return;
        res.locals.caller = { kind: 'user', userId: who.userId } satisfies Caller;
        next();
      };

  const userOrOperator: RequestHandler = async (req, res, next) => {
    const token = bearer(req);
    if (token && isAdminToken(token)) {
      res.locals.caller = { kind: 'operator', subject: 'admin-token' } satisfies Caller;
      next();
      return;
    }
    if (!verifier) {
      next();
      return;
    }
    if (token === undefined) return refuse(req, res, 'UNAUTHORIZED', 'no Authorization header');
    if (token === '') return refuse(req, res, 'INVALID_TOKEN', 'not a Bearer credential');
    const who = await verified(req, res, token);
    if (!who) return;
    res.locals.caller = (
      who.operator
        ? { kind: 'operator', subject: who.userId }
        : { kind: 'user', userId: who.userId }
    ) satisfies Caller;
    next();
  };

  const operator: RequestHandler = async (req, res, next) => {
    const token = bearer(req);
    let subject: string;
    if (token && isAdminToken(token)) {
      subject = 'admin-token';
    } else if (!verifier || token === undefined) {
      // Without identity the only operator credential is ADMIN_TOKEN: answered as before.
      return refuse(
        req,
        res,
        'UNAUTHORIZED',
        token === undefined ? 'no Authorization header' : 'not the operator token',
        'an operator token is required: Authorization: Bearer <ADMIN_TOKEN>',
      );
    } else {
      if (token === '') return refuse(req, res, 'INVALID_TOKEN', 'not a Bearer credential');
      const who = await verified(req, res, token);
      if (!who) return;
      if (!who.operator) {
        audit(req, res, 'operator-action', 'forbidden', { actor: who.userId, status: 403 });
        sendProblem(res, 'FORBIDDEN', 'this endpoint is for operators');
        return;
      }
      subject = who.userId;
    }
    res.locals.caller = { kind: 'operator', subject } satisfies Caller;
    // Reads are not actions: a dashboard polling every second would bury the actions.
    if (req.method === 'GET' || req.method === 'HEAD') {
      next();
      return;
    }
    res.once('finish', () =>
      audit(req, res, 'operator-action', res.statusCode < 400 ? 'done' : 'refused', {
        actor: subject,
        status: res.statusCode,
      }),
    );
    res.once('close', () => {
      if (!res.writableFinished) audit(req, res, 'operator-action', 'aborted', { actor: subject });
    });
    next();
  };

  return { user, userOrOperator, operator };
}
