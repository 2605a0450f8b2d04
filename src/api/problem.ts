import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Response } from 'express';
import { DomainError, type ErrorCode, type FieldIssue } from '../domain/errors.js';
import type { Logger } from '../domain/ports.js';
import {
  HTTP_REQUEST_ID,
  httpRequestIdOf,
  newRequestId,
  REQUEST_ID_HEADER,
  requestIdOf,
} from './request-id.js';

export type ProblemCode =
  | ErrorCode
  | 'BAD_REQUEST'
  | 'METHOD_NOT_ALLOWED'
  | 'REQUEST_TIMEOUT'
  | 'HEADERS_TOO_LARGE'
  | 'INVALID_TOKEN'
  | 'FORBIDDEN'
  | 'USER_MISMATCH'
  | 'RATE_LIMITED'
  | 'FILE_NOT_FOUND'
  | 'INTERNAL_ERROR';

/** The only table of HTTP statuses: domain codes never know about HTTP. */
const STATUS: Record<ProblemCode, number> = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  INVALID_TOKEN: 401,
  FORBIDDEN: 403,
  USER_MISMATCH: 403,
  NOT_FOUND: 404,
  COUPON_NOT_FOUND: 404,
  REQUEST_NOT_FOUND: 404,
  REQUEST_LOST: 410,
  BATCH_IN_FLIGHT: 409,
  SYNC_IN_PROGRESS: 409,
  SYNC_LOCK_LOST: 409,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  ALREADY_ISSUED: 409,
  SOLD_OUT: 409,
  EVENT_NOT_OPEN: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  RATE_LIMITED: 429,
  FILE_NOT_FOUND: 404,
  INTERNAL_ERROR: 500,
  DEPENDENCY_UNAVAILABLE: 503,
  EVENT_PAUSED: 409,
  EVENT_FINISHED: 409,
  QUANTITY_BELOW_ISSUED: 409,
};

/** Every code a problem answer may carry (for the API description). */
export const PROBLEM_CODES = Object.keys(STATUS) as ProblemCode[];

const TITLE: Record<ProblemCode, string> = {
  VALIDATION_FAILED: 'The request is not valid',
  INVALID_JSON: 'The body is not valid JSON',
  BAD_REQUEST: 'Bad request',
  UNAUTHORIZED: 'Authentication required',
  INVALID_TOKEN: 'The bearer token is not valid',
  FORBIDDEN: 'Not allowed',
  USER_MISMATCH: 'The body names another user than the token',
  NOT_FOUND: 'No such resource',
  COUPON_NOT_FOUND: 'No such coupon',
  REQUEST_NOT_FOUND: 'No such issue request',
  REQUEST_LOST: 'The request was lost before it was decided',
  BATCH_IN_FLIGHT: 'A batch is still in flight',
  SYNC_IN_PROGRESS: 'Another sync of this coupon is still running',
  SYNC_LOCK_LOST: 'The sync outlived its lock and applied nothing',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  REQUEST_TIMEOUT: 'The request took too long to arrive',
  ALREADY_ISSUED: 'Already issued',
  SOLD_OUT: 'Sold out',
  EVENT_NOT_OPEN: 'The event is not open',
  PAYLOAD_TOO_LARGE: 'The body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  HEADERS_TOO_LARGE: 'The URL or headers are too large',
  RATE_LIMITED: 'Too many requests',
  FILE_NOT_FOUND: 'No such file',
  INTERNAL_ERROR: 'Internal error',
  DEPENDENCY_UNAVAILABLE: 'Service temporarily unavailable',
  EVENT_PAUSED: 'The event is paused',
  EVENT_FINISHED: 'The event is over',
  QUANTITY_BELOW_ISSUED: 'The quantity cannot go below what is issued',
};

/** Errors raised by express and body-parser, by their `type`. */
const BODY_PARSER: Record<string, ProblemCode> = {
  'entity.parse.failed': 'INVALID_JSON',
  'entity.too.large': 'PAYLOAD_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
};

function problemBody(code: ProblemCode, detail: string, instance: string | undefined) {
  return {
    type: `/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLE[code],
    status: STATUS[code],
    code,
    detail,
    ...(instance === undefined ? {} : { instance }),
  };
}

/**
 * A complete HTTP/1.1 problem response as bytes, for requests Node rejects
 * before Express sees them (a URL or headers over the size limit, bytes that
 * are not HTTP, a request that did not arrive in time). Its request id is a
 * new one: the request's own headers were not read.
 */
export function rawProblem(
  code: 'BAD_REQUEST' | 'HEADERS_TOO_LARGE' | 'REQUEST_TIMEOUT',
  detail: string,
): string {
  const body = JSON.stringify(problemBody(code, detail, undefined));
  return (
    `HTTP/1.1 ${STATUS[code]} ${TITLE[code]}\r\n` +
    'Content-Type: application/problem+json; charset=utf-8\r\n' +
    `${REQUEST_ID_HEADER}: ${newRequestId()}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

/** A problem answered by the HTTP server itself, before Express sees the request; then close. */
export function writeProblem(res: ServerResponse, code: ProblemCode, detail: string): void {
  const body = JSON.stringify(problemBody(code, detail, res.req.url));
  res.writeHead(STATUS[code], {
    [REQUEST_ID_HEADER]: requestIdOf(res.req),
    'Content-Type': 'application/problem+json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
}

const PROBLEM_CODE = 'problemCode';

/** The code of the problem this response answered with, if it did (for metrics). */
export function problemCodeOf(res: Response): ProblemCode | undefined {
  return res.locals[PROBLEM_CODE] as ProblemCode | undefined;
}

export function sendProblem(
  res: Response,
  code: ProblemCode,
  detail: string,
  extra: { errors?: readonly FieldIssue[] } = {},
): void {
  const status = STATUS[code];
  res.locals[PROBLEM_CODE] = code;
  if (code === 'DEPENDENCY_UNAVAILABLE') res.setHeader('Retry-After', '1');
  // RFC 6750 §3: no error code when no credentials came, `invalid_token` for bad ones.
  if (code === 'UNAUTHORIZED') res.setHeader('WWW-Authenticate', 'Bearer');
  else if (code === 'INVALID_TOKEN') {
    res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
  } else if (code === 'FORBIDDEN') {
    res.setHeader('WWW-Authenticate', 'Bearer error="insufficient_scope"');
  }
  res
    .status(status)
    .type('application/problem+json')
    .json({
      ...problemBody(code, detail, res.req.originalUrl),
      ...(extra.errors ? { errors: extra.errors } : {}),
    });
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      // Too late for a problem answer: the client sees the connection cut, the log says why.
      logger.error('error after the answer began: connection closed', {
        [HTTP_REQUEST_ID]: httpRequestIdOf(res),
        method: req.method,
        path: req.path,
        error: err instanceof Error ? err.stack : String(err),
      });
      res.destroy();
      return;
    }
    if (err instanceof DomainError) {
      if (err.code === 'DEPENDENCY_UNAVAILABLE') {
        logger.warn('dependency unavailable', {
          [HTTP_REQUEST_ID]: httpRequestIdOf(res),
          method: req.method,
          path: req.path,
          error: err.message,
        });
      }
      sendProblem(res, err.code, err.message, err.details ?? {});
      return;
    }
    const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
    const parserCode = e.type ? BODY_PARSER[e.type] : undefined;
    if (parserCode) {
      sendProblem(
        res,
        parserCode,
        parserCode === 'INVALID_JSON' ? 'the body could not be parsed as JSON' : String(e.message),
      );
      return;
    }
    const status = e.status ?? e.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      sendProblem(
        res,
        status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST',
        'the request could not be read',
      );
      return;
    }
    // Not expected: a bug. Log it with context; the client learns nothing of the internals.
    logger.error('unhandled error', {
      [HTTP_REQUEST_ID]: httpRequestIdOf(res),
      method: req.method,
      path: req.path,
      error: err instanceof Error ? err.stack : String(err),
    });
    sendProblem(res, 'INTERNAL_ERROR', 'an unexpected error occurred');
  };
}
