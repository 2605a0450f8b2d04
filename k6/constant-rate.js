/*
 * constant-rate.js: the published scenario of the 2,800 requests/s system.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 -e ADMIN_TOKEN=... k6/constant-rate.js
 *
 * setup() opens an event with COUPONS coupons (100,000), then:
 *
 * - scenario `accept` (constant-arrival-rate, open model): RATE (2,800) new
 *   requests per second for DURATION (60 s), every one from a user never seen
 *   before. It measures what the README promises for the accept path: the
 *   latency of POST /coupons/:id/issue-requests and that every answer is a 202
 *   or a 409 with a documented code. Each iteration sends exactly one request,
 *   so the offered rate is the request rate.
 * - scenario `probe` (constant-arrival-rate, PROBE_RATE = 2/s, same window):
 *   a few more users, each of whom asks for a coupon and then follows their own
 *   request with GET /issue-requests/:id until it is final (or PROBE_TIMEOUT
 *   passes), counting ISSUED and REJECTED by reason and timing 202 → final.
 * - scenario `settle` (shared-iterations, 1 VU, after the accept phase): polls
 *   GET /coupons/:id and GET /coupons/:id/consistency until no accepted request
 *   is left waiting, or SETTLE_TIMEOUT passes, and records whether it settled
 *   and whether Redis and PostgreSQL agree.
 * - teardown() reads the final state once more (waiting up to TEARDOWN_WAIT if
 *   needed) and logs issuedCount, remaining and any drift.
 *
 * Why not follow every accepted request? k6 VUs share no memory, so the request
 * ids one VU received are invisible to every other VU and to teardown(). The
 * alternatives are all worse: following each request inside its own `accept`
 * iteration keeps VUs busy for seconds and turns the polls into load that is
 * counted in the accept latency; remembering ids per VU and polling them in a
 * later scenario relies on which VUs k6 happens to reuse. So the script checks
 * completeness where the service can answer it for everyone at once, in the
 * operator's consistency report (no request queued, no request record waiting,
 * no batch in flight means every accepted request is final: README invariant
 * I3), and checks per-request outcomes on a sample whose users follow their own
 * requests in a separate scenario, so their polls never count as accept latency.
 * Without the consistency report (no operator token, older service) the settle
 * phase falls back to `remaining == 0` or an issuedCount that stopped changing
 * for SETTLE_STABLE, and `stores_agree` fails because it cannot be checked.
 *
 * Every user asks once and users are distinct, so each accepted request should
 * end ISSUED: the service queues a request only while unclaimed stock remains.
 * Expect issue_accepted == coupon_issued_count in the summary, and when the
 * offered demand (RATE x DURATION) clearly exceeds COUPONS, a sold-out event.
 */

import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
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
  followRequest,
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

const COUPONS = envInt('COUPONS', 100000, 1);
const RATE = envInt('RATE', 2800, 1);
const DURATION_MS = envDurationMs('DURATION', '60s');
// VUs needed ≈ rate × iteration time (Little's law): 280 VUs carry 2,800/s at
// up to 100 ms per request; k6 adds VUs up to MAX_VUS (500 ms per request)
// before it starts dropping iterations (counted in dropped_iterations).
const PRE_VUS = envInt('PRE_VUS', Math.max(10, Math.ceil(RATE / 10)), 1);
const MAX_VUS = envInt('MAX_VUS', Math.max(PRE_VUS, Math.ceil(RATE / 2)), 1);
const P95_MS = envNumber('P95_MS', 10);
const P99_MS = envNumber('P99_MS', 30);
const MAX_FAILED_RATE = envNumber('MAX_FAILED_RATE', 0.01);
const MAX_DROPPED = envInt('MAX_DROPPED', 0);
const PROBE_RATE = envInt('PROBE_RATE', 2);
const PROBE_TIMEOUT_MS = envDurationMs('PROBE_TIMEOUT', '60s');
const SETTLE_TIMEOUT_MS = envDurationMs('SETTLE_TIMEOUT', '120s');
const SETTLE_STABLE_MS = envDurationMs('SETTLE_STABLE', '5s');
const TEARDOWN_WAIT_MS = envDurationMs('TEARDOWN_WAIT', '30s');

if (MAX_VUS < PRE_VUS) throw new Error(`MAX_VUS (${MAX_VUS}) must be >= PRE_VUS (${PRE_VUS})`);
if (DURATION_MS < 1000) throw new Error('DURATION must be at least 1s');

// Time an accept iteration still in flight at the end may take to finish.
const ACCEPT_GRACE_MS = REQUEST_TIMEOUT_MS + 5000;
// The demand clearly exceeds the stock: the event must end sold out.
const EXPECT_SOLD_OUT = RATE * (DURATION_MS / 1000) >= COUPONS * 1.1;

// 2xx and 409 (sold out, already issued, not open) are answers the contract
// promises under load; anything else counts in http_req_failed.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

// ---------------------------------------------------------------------------
// Metrics

const issueAccepted = new Counter('issue_accepted');
const issueSoldOut = new Counter('issue_sold_out');
const issueAlreadyIssued = new Counter('issue_already_issued');
const issueOther = new Counter('issue_other'); // tagged with status and code

const probeFinal = new Rate('probe_final');
const probeIssued = new Counter('probe_issued');
const probeRejected = new Counter('probe_rejected'); // tagged with reason
const probeTimeToFinal = new Trend('probe_time_to_final', true);

const settled = new Rate('settled');
const storesAgreeRate = new Rate('stores_agree');
const settleWait = new Trend('settle_wait', true);
const couponIssuedCount = new Gauge('coupon_issued_count');

// ---------------------------------------------------------------------------
// Options

const scenarios = {
  accept: {
    executor: 'constant-arrival-rate',
    exec: 'accept',
    rate: RATE,
    timeUnit: '1s',
    duration: duration(DURATION_MS),
    preAllocatedVUs: PRE_VUS,
    maxVUs: MAX_VUS,
    gracefulStop: duration(ACCEPT_GRACE_MS),
  },
  settle: {
    executor: 'shared-iterations',
    exec: 'settle',
    vus: 1,
    iterations: 1,
    startTime: duration(DURATION_MS + ACCEPT_GRACE_MS),
    // Longer than the settle loop can take, so the iteration always records.
    maxDuration: duration(SETTLE_TIMEOUT_MS + REQUEST_TIMEOUT_MS + 15000),
  },
};

const thresholds = {
  // Fewer than 1% of all requests answered outside 2xx/409 (5xx, 4xx, timeouts).
  http_req_failed: [`rate<${MAX_FAILED_RATE}`],
  // Accept latency only: polls, setup and the settle phase are other scenarios.
  'http_req_duration{scenario:accept}': [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
  'checks{scenario:accept}': [`rate>${Number((1 - MAX_FAILED_RATE).toFixed(6))}`],
  // The generator kept up: every scheduled iteration ran.
  dropped_iterations: [`count<=${MAX_DROPPED}`],
  // Every accepted request was decided within SETTLE_TIMEOUT of the end.
  settled: ['rate==1'],
  // Once settled, issued + remaining = total, issued <= total, no drift.
  stores_agree: ['rate==1'],
  // Never more coupons than the event has; all of them when demand exceeds it.
  coupon_issued_count: [EXPECT_SOLD_OUT ? `value==${COUPONS}` : `value<=${COUPONS}`],
};

if (PROBE_RATE > 0) {
  scenarios.probe = {
    executor: 'constant-arrival-rate',
    exec: 'probe',
    rate: PROBE_RATE,
    timeUnit: '1s',
    duration: duration(DURATION_MS),
    preAllocatedVUs: Math.max(2, PROBE_RATE * 5),
    maxVUs: PROBE_RATE * (Math.ceil(PROBE_TIMEOUT_MS / 1000) + 5),
    // A probe that started at the very end still gets its full PROBE_TIMEOUT.
    gracefulStop: duration(PROBE_TIMEOUT_MS + 2 * REQUEST_TIMEOUT_MS),
  };
  // Every followed request reached ISSUED or REJECTED within PROBE_TIMEOUT.
  thresholds.probe_final = ['rate==1'];
  // Always true: listed only so the summary shows the rejections per reason.
  thresholds['probe_rejected{reason:SOLD_OUT}'] = ['count>=0'];
  thresholds['probe_rejected{reason:ALREADY_ISSUED}'] = ['count>=0'];
  thresholds['probe_rejected{reason:EVENT_CLOSED}'] = ['count>=0'];
}

export const options = {
  scenarios,
  thresholds,
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
  const coupon = createCoupon({ name: `k6 constant-rate ${runId}`, totalQuantity: COUPONS });
  console.log(
    `run ${runId}: coupon ${coupon.id} with ${COUPONS} coupons, ${RATE} requests/s for ` +
      `${duration(DURATION_MS)} (${PRE_VUS}..${MAX_VUS} VUs), probes ${PROBE_RATE}/s`,
  );
  return { runId, couponId: coupon.id };
}

/** Counts one answer to POST /coupons/:id/issue-requests. */
function countOutcome(outcome) {
  if (outcome.kind === ACCEPTED) issueAccepted.add(1);
  else if (outcome.kind === SOLD_OUT) issueSoldOut.add(1);
  else if (outcome.kind === ALREADY_ISSUED) issueAlreadyIssued.add(1);
  else issueOther.add(1, { status: String(outcome.status), code: outcome.code || 'none' });
}

/** One new user asks for a coupon: one request per iteration. */
export function accept(data) {
  const user = userId('c', data.runId, exec.scenario.iterationInTest);
  const { res, outcome } = requestIssue(data.couponId, user);
  countOutcome(outcome);
  check(res, {
    'accept: 202, or 409 with a documented code': () => isContractAnswer(outcome),
  });
}

/** One new user asks for a coupon and follows the request until it is final. */
export function probe(data) {
  const user = userId('p', data.runId, exec.scenario.iterationInTest);
  const { res, outcome } = requestIssue(data.couponId, user);
  countOutcome(outcome);
  check(res, {
    'probe: 202, or 409 with a documented code': () => isContractAnswer(outcome),
  });
  if (outcome.kind !== ACCEPTED) return;

  const result = followRequest(outcome.requestId, { deadlineMs: Date.now() + PROBE_TIMEOUT_MS });
  probeFinal.add(result.final);
  if (!result.final) {
    console.warn(
      `request ${outcome.requestId} not final after ${duration(PROBE_TIMEOUT_MS)}: ` +
        `${result.status}${result.answer ? ` (${result.answer})` : ''}`,
    );
    return;
  }
  probeTimeToFinal.add(result.waitedMs);
  if (result.status === 'ISSUED') probeIssued.add(1);
  else probeRejected.add(1, { reason: result.reason || 'none' });
}

/** After the accept phase: wait until no accepted request is left undecided. */
export function settle(data) {
  settleAndRecord(
    data.couponId,
    { settled, storesAgreeRate, settleWait, couponIssuedCount },
    { timeoutMs: SETTLE_TIMEOUT_MS, stableMs: SETTLE_STABLE_MS },
  );
}

/** Final report: the coupon's counts once everything is decided. */
export function teardown(data) {
  const result = waitUntilSettled(data.couponId, {
    timeoutMs: TEARDOWN_WAIT_MS,
    stableMs: SETTLE_STABLE_MS,
  });
  console.log(`final: ${settleReport(data.couponId, result)}`);
  if (!result.settled) {
    console.error(`coupon ${data.couponId} still has undecided requests at the end of the run`);
  }
}
