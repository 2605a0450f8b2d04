// Shared helpers for the k6 scripts in this folder (k6 runtime, not Node.js).
//
// Everything here talks to the HTTP contract documented in the repository's README
// ("HTTP API"): open an event, ask for a coupon, follow a request until it is final,
// read a coupon's counts and the operator's consistency report.

import http from 'k6/http';
import { sleep } from 'k6';

// ---------------------------------------------------------------------------
// Environment

/** Base URL of the service, without a trailing slash. */
export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');

/** Operator token (the development default of `npm start` without ADMIN_TOKEN). */
export const ADMIN_TOKEN = __ENV.ADMIN_TOKEN || 'dev-admin-token-change-me';

/** An integer from the environment, or `fallback` when unset or empty. */
export function envInt(name, fallback, min = 0) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

/** A number from the environment, or `fallback` when unset or empty. */
export function envNumber(name, fallback, min = 0) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  }
  return value;
}

/**
 * A duration from the environment in milliseconds. Accepts k6-style durations
 * ("90s", "1m30s", "500ms", "1h") or a bare number of seconds ("60").
 */
export function envDurationMs(name, fallback) {
  const raw = __ENV[name];
  const text = raw === undefined || raw === '' ? fallback : raw;
  const ms = parseDurationMs(text);
  if (ms === null) throw new Error(`${name} must be a duration like 60s or 1m30s, got "${text}"`);
  return ms;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000 };

/** "1m30s" → 90000; a bare number is seconds; null when it is not a duration. */
export function parseDurationMs(text) {
  const trimmed = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(trimmed)) return null;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let match;
  while ((match = part.exec(trimmed)) !== null) total += Number(match[1]) * UNIT_MS[match[2]];
  return Math.round(total);
}

/** Milliseconds as a k6 duration string ("90000" → "90s", "1500" → "1500ms"). */
export function duration(ms) {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.round(ms)}ms`;
}

/**
 * Timeout of every HTTP request (k6's default is 60 s). Kept short so one stuck
 * call cannot eat a whole polling deadline.
 */
export const REQUEST_TIMEOUT_MS = envDurationMs('REQUEST_TIMEOUT', '10s');

/** How often a pending request or a settling coupon is polled. */
export const POLL_MS = envInt('POLL_MS', 500, 10);

// ---------------------------------------------------------------------------
// Identifiers

/**
 * A short id for this run, so the user ids of two runs never meet (RUN_ID
 * overrides it). Made in setup() and handed to every VU through its data.
 */
export function newRunId() {
  const fromEnv = __ENV.RUN_ID;
  if (fromEnv) {
    if (!/^[A-Za-z0-9_.:-]{1,24}$/.test(fromEnv)) {
      throw new Error(`RUN_ID must be 1-24 characters from [A-Za-z0-9_.:-], got "${fromEnv}"`);
    }
    return fromEnv;
  }
  const random = Math.floor(Math.random() * 1679616).toString(36); // up to 4 base-36 digits
  return `${Date.now().toString(36)}${random}`;
}

/** A userId the contract accepts: 1-64 characters from [A-Za-z0-9_.:-]. */
export function userId(prefix, runId, n) {
  const id = `${prefix}-${runId}-${n}`;
  if (id.length > 64) throw new Error(`userId "${id}" is longer than 64 characters`);
  return id;
}

// ---------------------------------------------------------------------------
// Requests

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function adminHeaders(extra) {
  return Object.assign({ Authorization: `Bearer ${ADMIN_TOKEN}` }, extra);
}

/** Request parameters with a `name` tag, so URLs with ids group into one series. */
function params(name, headers, extraTags) {
  return {
    headers,
    timeout: duration(REQUEST_TIMEOUT_MS),
    tags: Object.assign({ name }, extraTags),
  };
}

/** The JSON body of a response, or null when there is none or it does not parse. */
export function body(res) {
  if (!res || !res.body) return null;
  try {
    return JSON.parse(res.body);
  } catch {
    return null; // not JSON
  }
}

/** The problem-details `code` of an error answer, or null. */
export function problemCode(res) {
  const parsed = body(res);
  return parsed && typeof parsed.code === 'string' ? parsed.code : null;
}

/** Seconds from a Retry-After header, or null. */
function retryAfterMs(res) {
  const value = res && res.headers ? res.headers['Retry-After'] : undefined;
  const seconds = Number(value);
  return value !== undefined && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : null;
}

/** A short description of a response for error messages. */
export function describe(res) {
  if (!res) return 'no response';
  if (res.status === 0) return `no answer (${res.error || 'connection failed'})`;
  const text = typeof res.body === 'string' ? res.body.slice(0, 300) : '';
  return `${res.status} ${text}`;
}

/** GET /health: the answer, whatever it is (setup logs it). */
export function health() {
  return http.get(`${BASE_URL}/health`, params('GET /health'));
}

/**
 * POST /coupons. Throws with the answer when the event is not created, so a
 * wrong BASE_URL or ADMIN_TOKEN stops the run in setup().
 */
export function createCoupon({ name, totalQuantity, startsAt, endsAt }) {
  const payload = { name, totalQuantity };
  if (startsAt) payload.startsAt = startsAt;
  if (endsAt) payload.endsAt = endsAt;
  const res = http.post(
    `${BASE_URL}/coupons`,
    JSON.stringify(payload),
    params('POST /coupons', adminHeaders(JSON_HEADERS)),
  );
  const created = body(res);
  if (res.status !== 201 || !created || !Number.isInteger(created.id)) {
    throw new Error(`POST ${BASE_URL}/coupons failed: ${describe(res)}`);
  }
  return created;
}

/** GET /coupons/:id → the parsed coupon, or null (with the response). */
export function getCoupon(couponId) {
  const res = http.get(`${BASE_URL}/coupons/${couponId}`, params('GET /coupons/:id'));
  return { res, coupon: res.status === 200 ? body(res) : null };
}

/** The request objects for GET /coupons/:id and GET /coupons/:id/consistency, for http.batch. */
function settleRequests(couponId) {
  return [
    ['GET', `${BASE_URL}/coupons/${couponId}`, null, params('GET /coupons/:id')],
    [
      'GET',
      `${BASE_URL}/coupons/${couponId}/consistency`,
      null,
      params('GET /coupons/:id/consistency', adminHeaders()),
    ],
  ];
}

/** The outcome kinds of an answer to POST /coupons/:id/issue-requests. */
export const ACCEPTED = 'accepted';
export const SOLD_OUT = 'sold_out';
export const ALREADY_ISSUED = 'already_issued';
export const NOT_OPEN = 'not_open';
export const UNAVAILABLE = 'unavailable';
export const OTHER = 'other';

/** 409 codes the contract documents for an issue request. */
export const KNOWN_CONFLICT_CODES = ['SOLD_OUT', 'ALREADY_ISSUED', 'EVENT_NOT_OPEN'];

/**
 * Classifies an answer to POST /coupons/:id/issue-requests:
 * `{kind, status, code, requestId}` where kind is one of the constants above.
 * A 202 counts as accepted only when it carries a requestId, status PENDING and
 * a Location header naming that request.
 */
export function classifyIssue(res) {
  const status = res.status;
  if (status === 202) {
    const parsed = body(res);
    const requestId = parsed && typeof parsed.requestId === 'string' ? parsed.requestId : null;
    const location = res.headers['Location'];
    const wellFormed =
      requestId !== null &&
      parsed.status === 'PENDING' &&
      location === `/issue-requests/${requestId}`;
    return wellFormed
      ? { kind: ACCEPTED, status, code: null, requestId }
      : { kind: OTHER, status, code: 'MALFORMED_202', requestId };
  }
  const code = problemCode(res);
  if (status === 409 && code === 'SOLD_OUT') return { kind: SOLD_OUT, status, code };
  if (status === 409 && code === 'ALREADY_ISSUED') return { kind: ALREADY_ISSUED, status, code };
  if (status === 409 && code === 'EVENT_NOT_OPEN') return { kind: NOT_OPEN, status, code };
  if (status === 503 && code === 'DEPENDENCY_UNAVAILABLE') {
    return { kind: UNAVAILABLE, status, code };
  }
  return { kind: OTHER, status, code: code || (status === 0 ? 'NO_ANSWER' : null) };
}

/** True for the answers the contract allows: 202, or 409 with a documented code. */
export function isContractAnswer(outcome) {
  return (
    outcome.kind === ACCEPTED ||
    outcome.kind === SOLD_OUT ||
    outcome.kind === ALREADY_ISSUED ||
    outcome.kind === NOT_OPEN
  );
}

/** POST /coupons/:id/issue-requests → `{res, outcome}` (see classifyIssue). */
export function requestIssue(couponId, user, extraTags) {
  const res = http.post(
    `${BASE_URL}/coupons/${couponId}/issue-requests`,
    JSON.stringify({ userId: user }),
    params('POST /coupons/:id/issue-requests', JSON_HEADERS, extraTags),
  );
  return { res, outcome: classifyIssue(res) };
}

/** GET /issue-requests/:requestId. */
export function getIssueRequest(requestId, extraTags) {
  return http.get(
    `${BASE_URL}/issue-requests/${encodeURIComponent(requestId)}`,
    params('GET /issue-requests/:id', undefined, extraTags),
  );
}

/**
 * Polls GET /issue-requests/:requestId every `pollMs` until the request is final
 * or `deadlineMs` (an absolute Date.now() value) passes. A 503 (honouring its
 * Retry-After) or a timeout is retried. Returns `{final, status, reason, waitedMs,
 * polls}` where status is ISSUED, REJECTED, PENDING (not final when the deadline
 * passed), LOST (410 REQUEST_LOST) or ERROR (any other answer, with `answer`
 * describing it).
 */
export function followRequest(requestId, { deadlineMs, pollMs = POLL_MS, tags } = {}) {
  const started = Date.now();
  let polls = 0;
  for (;;) {
    const res = getIssueRequest(requestId, tags);
    polls += 1;
    const parsed = res.status === 200 ? body(res) : null;
    if (parsed && (parsed.status === 'ISSUED' || parsed.status === 'REJECTED')) {
      return {
        final: true,
        status: parsed.status,
        reason: parsed.reason || null,
        waitedMs: Date.now() - started,
        polls,
      };
    }
    if (res.status === 410) {
      return { final: false, status: 'LOST', reason: problemCode(res), waitedMs: 0, polls };
    }
    let pause = pollMs;
    if (!parsed || parsed.status !== 'PENDING') {
      if (res.status !== 503 && res.status !== 0) {
        return { final: false, status: 'ERROR', answer: describe(res), waitedMs: 0, polls };
      }
      pause = Math.max(pollMs, retryAfterMs(res) || 0);
    }
    if (Date.now() + pause > deadlineMs) {
      return {
        final: false,
        status: 'PENDING',
        reason: null,
        waitedMs: Date.now() - started,
        polls,
      };
    }
    sleep(pause / 1000);
  }
}

/**
 * Waits until the event is settled, that is until no accepted request is still
 * waiting for the worker, or until `timeoutMs` passes.
 *
 * Each poll reads GET /coupons/:id (issuedCount, remaining, from PostgreSQL) and
 * GET /coupons/:id/consistency (operator; what Redis still holds) in one
 * http.batch:
 * - when the consistency report answers, the event is settled once Redis has no
 *   queued request, no waiting request record and no batch in flight: every
 *   accepted request is then final (README invariant I3). A gate that is not
 *   loaded holds nothing either (that only happens after Redis lost its data).
 * - when it does not answer (older service, no operator token), the event counts
 *   as settled once `remaining` is 0 or `issuedCount` has not changed for
 *   `stableMs`. That is weaker: a stalled worker also looks stable.
 *
 * Returns `{settled, how, waitedMs, coupon, consistency}`; `how` is
 * "queue-empty", "sold-out", "stable" or "timeout".
 */
export function waitUntilSettled(couponId, { timeoutMs, pollMs = 1000, stableMs = 5000 } = {}) {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let coupon = null;
  let consistency = null;
  let lastIssued = null;
  let lastChange = started;
  for (;;) {
    const [couponRes, consistencyRes] = http.batch(settleRequests(couponId));
    const now = Date.now();
    if (couponRes.status === 200) coupon = body(couponRes) || coupon;
    consistency = consistencyRes.status === 200 ? body(consistencyRes) : null;

    if (coupon && coupon.issuedCount !== lastIssued) {
      lastIssued = coupon.issuedCount;
      lastChange = now;
    }

    let how = null;
    if (consistency && consistency.redis) {
      const redis = consistency.redis;
      const empty =
        !redis.loaded ||
        (redis.queued === 0 && redis.waitingRequests === 0 && redis.inflightBatches === 0);
      if (empty) how = 'queue-empty';
    } else if (coupon) {
      if (coupon.remaining === 0) how = 'sold-out';
      else if (now - lastChange >= stableMs) how = 'stable';
    }
    if (how) return { settled: true, how, waitedMs: now - started, coupon, consistency };

    if (now + pollMs > deadline) {
      return { settled: false, how: 'timeout', waitedMs: now - started, coupon, consistency };
    }
    sleep(pollMs / 1000);
  }
}

/** One line for the log about a settle result. */
export function settleReport(couponId, result) {
  const c = result.coupon || {};
  const redis = result.consistency && result.consistency.redis;
  return JSON.stringify({
    couponId,
    settled: result.settled,
    how: result.how,
    waitedMs: result.waitedMs,
    totalQuantity: c.totalQuantity,
    issuedCount: c.issuedCount,
    remaining: c.remaining,
    status: c.status,
    consistent: result.consistency ? result.consistency.consistent : 'unknown',
    drift: result.consistency ? result.consistency.drift : 'unknown',
    redisQueued: redis ? redis.queued : 'unknown',
    redisWaiting: redis ? redis.waitingRequests : 'unknown',
    redisInflightBatches: redis ? redis.inflightBatches : 'unknown',
  });
}

/**
 * True when the settled state honours the invariants a client can see: no more
 * issued than the total, issuedCount + remaining = total, and (when the operator
 * report answered) no drift between Redis and PostgreSQL.
 */
export function storesAgree(result) {
  const c = result.coupon;
  if (!c || !result.consistency) return false;
  return (
    c.issuedCount <= c.totalQuantity &&
    c.issuedCount + c.remaining === c.totalQuantity &&
    result.consistency.consistent === true
  );
}

/**
 * The settle step both scripts end with: wait until no accepted request is
 * left undecided, then record the verdicts on the script's own metrics.
 */
export function settleAndRecord(couponId, metrics, options) {
  let result = { settled: false, how: 'error', waitedMs: 0, coupon: null, consistency: null };
  try {
    result = waitUntilSettled(couponId, options);
  } finally {
    metrics.settled.add(result.settled);
    metrics.storesAgreeRate.add(result.settled && storesAgree(result));
    metrics.settleWait.add(result.waitedMs);
    if (result.coupon) metrics.couponIssuedCount.add(result.coupon.issuedCount);
    console.log(`settle: ${settleReport(couponId, result)}`);
  }
}
