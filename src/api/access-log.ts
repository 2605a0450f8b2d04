import type { RequestHandler } from 'express';
import type { Logger } from '../domain/ports.js';
import { HTTP_REQUEST_ID, httpRequestIdOf } from './request-id.js';

export interface AccessLogSettings {
  /** `off`: no middleware at all; `sampled`: `sampleRate` of the requests; `all`: every one. */
  readonly mode: 'off' | 'sampled' | 'all';
  /** 0 to 1; read with `sampled` only. */
  readonly sampleRate: number;
  /** Draws in [0, 1) deciding whether a request is sampled; Math.random by default. */
  readonly random?: () => number;
}

/**
 * The access log: one line per answered request, written when its answer has
 * gone out (`finish`), so the status and the duration are the real ones. A
 * request the client abandoned before its answer finished gets no line.
 * Returns no middleware when the log is off, so the hot path pays nothing for
 * it; when sampled, a request not drawn costs one random number.
 */
export function accessLog(settings: AccessLogSettings, logger: Logger): RequestHandler | undefined {
  if (settings.mode === 'off') return undefined;
  const rate = settings.mode === 'all' ? 1 : settings.sampleRate;
  if (rate <= 0) return undefined;
  const random = settings.random ?? Math.random;
  return (req, res, next) => {
    if (rate < 1 && random() >= rate) {
      next();
      return;
    }
    const started = performance.now();
    res.once('finish', () => {
      logger.info('access', {
        [HTTP_REQUEST_ID]: httpRequestIdOf(res),
        method: req.method,
        // The route's pattern, not the URL: bounded, and no ids or query strings in the log.
        route: (req.route as { path?: string } | undefined)?.path ?? null,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        ip: req.ip,
      });
    });
    next();
  };
}
