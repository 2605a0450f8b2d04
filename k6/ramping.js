/*
 * ramping.js: the published scenario of the Redis-queue-plus-scheduler system.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 -e ADMIN_TOKEN=... k6/ramping.js
 *
 * setup() opens an event with COUPONS coupons (1,000), then:
 *
 * - scenario `ramp` (ramping-vus, closed model): 0 → VUS_1 (50) VUs over
 *   STAGE_1 (30 s), then VUS_1 → VUS_2 (100) VUs over STAGE_2 (30 s). Each
 *   iteration picks one of USERS (5,000) users at random and asks for a coupon,
 *   so users repeat: a user whose request is still pending gets 202 with the
 *   same requestId, an issued user gets 409 ALREADY_ISSUED, and once every
 *   coupon is claimed everyone else gets 409 SOLD_OUT. Each VU sends its next
 *   request as soon as the previous one is answered (THINK_MS, default 0).
 * - scenario `settle` (shared-iterations, 1 VU, after the ramp): polls
 *   GET /coupons/:id and GET /coupons/:id/consistency until no accepted request
 *   is left waiting, or SETTLE_TIMEOUT passes (see waitUntilSettled in lib.js).
 * - teardown() polls the same way until settled (normally at once, the settle
 *   scenario already waited), logs issuedCount, remaining and any drift.
 *
 * The verdict on settling is a threshold on the `settled` Rate recorded by the
 * settle scenario rather than something teardown() decides: metrics recorded
 * inside a scenario always count for thresholds.
 *
 * A VU remembers the requestId it got for each user, so when the same VU later
 * gets another 202 for that user it can tell whether the service kept the
 * user's place (repeat_same_request) or gave them a second one
 * (repeat_new_request). The contract says a user who asks again while pending
 * gets the same requestId, and a user whose request was issued gets 409, so
 * repeat_new_request must stay 0. VUs share no memory, so repeats that land on
 * different VUs are not compared.
 */

import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';
import {
  ACCEPTED,
  ALREADY_ISSUED,
  BASE_URL,
  REQUEST_TIMEOUT_MS,
  SOLD_OUT,
  createCoupon,
  describe,
  duration,
  envDurationMs,
  envInt,
  envNumber,
  health,
  isContractAnswer,
  newRunId,
  requestIssue,
  settleReport,
  userId,
  waitUntilSettled,
  settleAndRecord,
} from './lib.js';

// ---------------------------------------------------------------------------
// Configuration (every value can be overridden with -e NAME=value)

const COUPONS = envInt('COUPONS', 1000, 1);
const USERS = envInt('USERS', 5000, 1);
const VUS_1 = envInt('VUS_1', 50, 1);
const VUS_2 = envInt('VUS_2', 100, 1);
const STAGE_1_MS = envDurationMs('STAGE_1', '30s');
const STAGE_2_MS = envDurationMs('STAGE_2', '30s');
const RAMP_DOWN_MS = envDurationMs('RAMP_DOWN', '10s');
const THINK_MS = envInt('THINK_MS', 0);
const P95_MS = envNumber('P95_MS', 49);
const P99_MS = envNumber('P99_MS', 89);
const MAX_FAILED_RATE = envNumber('MAX_FAILED_RATE', 0.01);
const SETTLE_TIMEOUT_MS = envDurationMs('SETTLE_TIMEOUT', '60s');
const SETTLE_STABLE_MS = envDurationMs('SETTLE_STABLE', '5s');
const TEARDOWN_WAIT_MS = envDurationMs('TEARDOWN_WAIT', '30s');

// 2xx and 409 (sold out, already issued, not open) are answers the contract
// promises under load; anything else counts in http_req_failed.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

// ---------------------------------------------------------------------------
// Metrics

const issueAccepted = new Counter('issue_accepted');
const issueSoldOut = new Counter('issue_sold_out');
const issueAlreadyIssued = new Counter('issue_already_issued');
const issueOther = new Counter('issue_other'); // tagged with status and code
const repeatSameRequest = new Counter('repeat_same_request');
const repeatNewRequest = new Counter('repeat_new_request');

const settled = new Rate('settled');
const storesAgreeRate = new Rate('stores_agree');
const settleWait = new Trend('settle_wait', true);
const couponIssuedCount = new Gauge('coupon_issued_count');

// ---------------------------------------------------------------------------
// Options

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      exec: 'ramp',
      startVUs: 0,
      stages: [
        { duration: duration(STAGE_1_MS), target: VUS_1 },
        { duration: duration(STAGE_2_MS), target: VUS_2 },
      ],
      gracefulRampDown: duration(RAMP_DOWN_MS),
      gracefulStop: duration(RAMP_DOWN_MS),
    },
    settle: {
      executor: 'shared-iterations',
      exec: 'settle',
      vus: 1,
      iterations: 1,
      startTime: duration(STAGE_1_MS + STAGE_2_MS + RAMP_DOWN_MS),
      // Longer than the settle loop can take, so the iteration always records.
      maxDuration: duration(SETTLE_TIMEOUT_MS + REQUEST_TIMEOUT_MS + 15000),
    },
  },
  thresholds: {
    // Fewer than 1% of all requests answered outside 2xx/409 (5xx, 4xx, timeouts).
    http_req_failed: [`rate<${MAX_FAILED_RATE}`],
    // Latency of the ramp's requests (POST /coupons/:id/issue-requests) only.
    'http_req_duration{scenario:ramp}': [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    'checks{scenario:ramp}': [`rate>${Number((1 - MAX_FAILED_RATE).toFixed(6))}`],
    // Every accepted request was decided within SETTLE_TIMEOUT of the end.
    settled: ['rate==1'],
    // Once settled, issued + remaining = total, issued <= total, no drift.
    stores_agree: ['rate==1'],
    // Never more coupons than the event has.
    coupon_issued_count: [`value<=${COUPONS}`],
    // A user asking again while pending kept their requestId (seen by one VU).
    repeat_new_request: ['count==0'],
  },
  setupTimeout: '60s',
  teardownTimeout: duration(TEARDOWN_WAIT_MS + REQUEST_TIMEOUT_MS + 15000),
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

// ---------------------------------------------------------------------------
// Lifecycle

export function setup() {
  const answer = health();
  if (answer.status === 0) throw new Error(`cannot reach ${BASE_URL}: ${describe(answer)}`);
  console.log(`health: ${describe(answer)}`);
  const runId = newRunId();
  const coupon = createCoupon({ name: `k6 ramping ${runId}`, totalQuantity: COUPONS });
  console.log(
    `run ${runId}: coupon ${coupon.id} with ${COUPONS} coupons, ${USERS} users, ` +
      `0→${VUS_1} VUs over ${duration(STAGE_1_MS)}, ${VUS_1}→${VUS_2} over ${duration(STAGE_2_MS)}`,
  );
  return { runId, couponId: coupon.id };
}

// userId → the requestId this VU got for them (this VU's memory only).
const seen = new Map();

/** A random user from the pool asks for a coupon. */
export function ramp(data) {
  const user = userId('r', data.runId, Math.floor(Math.random() * USERS));
  const { res, outcome } = requestIssue(data.couponId, user);

  if (outcome.kind === ACCEPTED) {
    issueAccepted.add(1);
    const before = seen.get(user);
    if (before === outcome.requestId) repeatSameRequest.add(1);
    else if (before !== undefined) repeatNewRequest.add(1);
    seen.set(user, outcome.requestId);
  } else if (outcome.kind === SOLD_OUT) {
    issueSoldOut.add(1);
  } else if (outcome.kind === ALREADY_ISSUED) {
    issueAlreadyIssued.add(1);
  } else {
    issueOther.add(1, { status: String(outcome.status), code: outcome.code || 'none' });
  }

  check(res, {
    'ramp: 202, or 409 with a documented code': () => isContractAnswer(outcome),
  });
  if (THINK_MS > 0) sleep(THINK_MS / 1000);
}

/** After the ramp: wait until no accepted request is left undecided. */
export function settle(data) {
  settleAndRecord(
    data.couponId,
    { settled, storesAgreeRate, settleWait, couponIssuedCount },
    { timeoutMs: SETTLE_TIMEOUT_MS, stableMs: SETTLE_STABLE_MS },
  );
}

/** Polls until settled and reports how many coupons were issued. */
export function teardown(data) {
  const result = waitUntilSettled(data.couponId, {
    timeoutMs: TEARDOWN_WAIT_MS,
    stableMs: SETTLE_STABLE_MS,
  });
  const c = result.coupon;
  const issued = c ? `${c.issuedCount} of ${c.totalQuantity}` : 'unknown';
  console.log(`final: issuedCount ${issued}; ${settleReport(data.couponId, result)}`);
  if (!result.settled) {
    console.error(`coupon ${data.couponId} still has undecided requests at the end of the run`);
  }
}
