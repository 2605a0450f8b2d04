/**
 * `npm run demo`: one first-come-first-served event, end to end.
 *
 * Schedules an event with DEMO_COUPONS coupons (100) to open DEMO_OPENS_IN_MS
 * (3,000) from now, shows that requests before then are refused
 * EVENT_NOT_OPEN and that the event opens by itself (its open job loads the
 * gate; 0 opens it at once), then fires DEMO_USERS distinct users (1,000)
 * plus DEMO_REPEATS repeated requests (200) in one concurrent burst, follows
 * every accepted request until it is final, prints what happened and checks
 * the invariants. Exit code 1 when any check fails.
 *
 * Target: DEMO_URL when set (a service whose limits and identity let one
 * address play a thousand users by their body's userId). Otherwise the demo
 * runs the service in this process (API on a free port plus the batch worker
 * and the lifecycle jobs) with the usual settings (REDIS_URL, DATABASE_URL,
 * ...) but without rate limits or users' tokens, and stops it at the end:
 * beside a running `npm start` it is one more process of that deployment.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../src/api/app.js';
import { listen } from '../src/api/server.js';
import { createContainer } from '../src/container.js';
import { ConfigError, loadConfig } from '../src/infra/config.js';
import { migrateDatabase } from '../src/infra/db/migrate.js';
import { loadEnvFile } from '../src/infra/env-file.js';
import { createLogger } from '../src/infra/logger.js';
import { StartupError, describeUrl } from '../src/infra/startup-error.js';

const POLL_CONCURRENCY = 100;
const POLL_INTERVAL_MS = 100;
const FINAL_TIMEOUT_MS = 60_000;
const HTTP_TIMEOUT_MS = 10_000;

/** A failure the demo explains in one message, without a stack trace. */
class DemoError extends Error {}

type AcceptOutcome = 'ACCEPTED' | 'SOLD_OUT' | 'ALREADY_ISSUED' | 'EVENT_NOT_OPEN' | 'OTHER';

interface Attempt {
  readonly userId: string;
  readonly repeat: boolean;
  outcome: AcceptOutcome;
  requestId?: string;
  detail?: string;
}

interface FinalView {
  readonly requestId: string;
  readonly userId: string;
  readonly status: 'ISSUED' | 'REJECTED';
  readonly reason: string | null;
  readonly issueId: number | null;
  readonly requestedAt: string;
  readonly decidedAt: string | null;
}

interface CouponView {
  readonly id: number;
  readonly totalQuantity: number;
  readonly issuedCount: number;
  readonly remaining: number;
  readonly status: string;
}

interface Target {
  readonly baseUrl: string;
  readonly adminToken: string;
  readonly selfStarted: boolean;
  /** In-process only: whether the event's open job has run (it marks the gate it loaded). */
  openJobRan?(couponId: number): Promise<boolean>;
  stop(): Promise<void>;
}

/** The demo's own knobs; everything about the service goes through loadConfig. */
function demoSetting(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DemoError(`${name}=${JSON.stringify(raw)}: must be an integer from ${min} to ${max}`);
  }
  return value;
}

async function main(): Promise<number> {
  // Before any setting is read: the demo's own knobs may be in .env too.
  loadEnvFile();
  const coupons = demoSetting('DEMO_COUPONS', 100, 1, 1_000_000);
  const users = demoSetting('DEMO_USERS', 1_000, 1, 100_000);
  const repeats = demoSetting('DEMO_REPEATS', 200, 0, 100_000);
  const opensInMs = demoSetting('DEMO_OPENS_IN_MS', 3_000, 0, 600_000);

  const target = await resolveTarget();
  try {
    return await runEvent(target, { coupons, users, repeats, opensInMs });
  } finally {
    await target.stop();
  }
}

/**
 * The service at DEMO_URL, or one started in this process. A service started by
 * `npm start` refuses a thousand users from one address (its rate limits) and,
 * with JWT_SECRET, users named in the body: the demo's own service does neither.
 */
async function resolveTarget(): Promise<Target> {
  const explicit = process.env.DEMO_URL;
  if (!explicit) {
    console.log("Starting the service in this process (no rate limits, no users' tokens).");
    return startInProcess();
  }
  const config = loadConfig();
  const baseUrl = explicit.replace(/\/+$/, '');
  const health = await probeHealth(baseUrl);
  if (health !== 'ok') {
    throw new DemoError(
      `DEMO_URL=${explicit}: GET /health ${health}. Start the service there, or unset DEMO_URL to let the demo start one.`,
    );
  }
  return { baseUrl, adminToken: config.adminToken, selfStarted: false, stop: async () => {} };
}

async function probeHealth(baseUrl: string): Promise<string> {
  try {
    const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status === 200 ? 'ok' : `answered ${res.status}`;
  } catch (err) {
    return `failed: ${describeFetchError(err)}`;
  }
}

/** The service as src/main.ts runs it (role "all"), on a free port, logging warnings only. */
async function startInProcess(): Promise<Target> {
  // A thousand users from one address is what the limits refuse, and the demo names its
  // users in the body: its own service runs without limits and without users' tokens.
  const config = loadConfig({
    ...process.env,
    RATE_LIMIT_ENABLED: 'false',
    JWT_SECRET: '',
    JWT_JWKS_URL: '',
    PORT: '0',
  });
  const logger = createLogger('warn', { role: 'demo' });
  await migrateDatabase(config.databaseUrl);
  const container = await createContainer(config, logger);
  let server: Server;
  try {
    server = await listen(createApp(container.api), config.port, '127.0.0.1', config.http);
  } catch (err) {
    await container.close();
    throw err;
  }
  container.worker.start();
  container.heartbeat.start();
  await container.lifecycle.start();
  const { port } = server.address() as AddressInfo;
  console.log(
    `Started in-process: Redis ${describeUrl(config.redisUrl)} (key prefix "${config.redisKeyPrefix}"), ` +
      `PostgreSQL ${describeUrl(config.databaseUrl)}.`,
  );
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    adminToken: config.adminToken,
    selfStarted: true,
    openJobRan: async (couponId) =>
      (await container.redis.hget(container.keys.coupon(couponId).meta, 'opened')) === '1',
    async stop() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      await container.close();
    },
  };
}

async function runEvent(
  target: Target,
  plan: { coupons: number; users: number; repeats: number; opensInMs: number },
): Promise<number> {
  const { baseUrl } = target;
  const startsAt = new Date(Date.now() + plan.opensInMs);
  const coupon = await createCoupon(target, plan.coupons, plan.opensInMs > 0 ? startsAt : null);
  const opening = plan.opensInMs > 0 ? await waitForOpening(target, coupon.id, startsAt) : null;

  // Repeating users are spread evenly over the users; each repeat is fired
  // right after that user's first request, in the same burst.
  const repeatsOf = new Array<number>(plan.users).fill(0);
  for (let k = 0; k < plan.repeats; k++) {
    const index =
      plan.repeats <= plan.users ? Math.floor((k * plan.users) / plan.repeats) : k % plan.users;
    repeatsOf[index] = (repeatsOf[index] ?? 0) + 1;
  }
  const width = String(plan.users).length;
  const attempts: Attempt[] = [];
  for (let i = 0; i < plan.users; i++) {
    const userId = `user-${String(i + 1).padStart(width, '0')}`;
    attempts.push({ userId, repeat: false, outcome: 'OTHER' });
    for (let r = 0; r < (repeatsOf[i] ?? 0); r++)
      attempts.push({ userId, repeat: true, outcome: 'OTHER' });
  }

  console.log(
    `Event #${coupon.id}: ${plan.coupons} coupons; firing ${attempts.length} requests ` +
      `(${plan.users} users + ${plan.repeats} repeats) at once...`,
  );
  const burstStart = performance.now();
  await Promise.all(attempts.map((attempt) => submit(baseUrl, coupon.id, attempt)));
  // Every request has been sent once the last one is answered.
  const burstEnd = performance.now();
  const burstMs = burstEnd - burstStart;

  // Accept-time answers, per user: every 202 a user got must carry one and the same requestId.
  const idsByUser = new Map<string, Set<string>>();
  const userOf = new Map<string, string>();
  let acceptedAnswers = 0;
  let repeatsAccepted = 0;
  for (const a of attempts) {
    if (a.outcome !== 'ACCEPTED' || !a.requestId) continue;
    acceptedAnswers += 1;
    if (a.repeat) repeatsAccepted += 1;
    const ids = idsByUser.get(a.userId) ?? new Set<string>();
    ids.add(a.requestId);
    idsByUser.set(a.userId, ids);
    userOf.set(a.requestId, a.userId);
  }
  const requestIds = [...userOf.keys()];
  const usersWithSeveralIds = [...idsByUser]
    .filter(([, ids]) => ids.size > 1)
    .map(([user]) => user);
  const count = (outcome: AcceptOutcome) => attempts.filter((a) => a.outcome === outcome).length;
  const others = attempts.filter((a) => a.outcome === 'OTHER');

  console.log(
    `...answered in ${ms(burstMs)}; following ${requestIds.length} accepted requests until final...`,
  );
  const poll = await pollUntilFinal(baseUrl, requestIds, burstEnd);
  const couponAfter = await getJson<CouponView>(`${baseUrl}/coupons/${coupon.id}`);

  const finals = [...poll.finals.values()];
  const issued = finals.filter((f) => f.status === 'ISSUED');
  const rejectedByReason = new Map<string, number>();
  for (const f of finals) {
    if (f.status === 'REJECTED') {
      const reason = f.reason ?? '(no reason)';
      rejectedByReason.set(reason, (rejectedByReason.get(reason) ?? 0) + 1);
    }
  }
  const issuesPerUser = new Map<string, number>();
  for (const f of issued) issuesPerUser.set(f.userId, (issuesPerUser.get(f.userId) ?? 0) + 1);
  const issuedTwice = [...issuesPerUser].filter(([, n]) => n > 1).map(([user]) => user);
  const wrongUser = finals.filter((f) => f.userId !== userOf.get(f.requestId)).length;
  const lastDecided = Math.max(
    ...finals.map((f) => Date.parse(f.decidedAt ?? '')).filter(Number.isFinite),
  );
  const lastRequested = Math.max(
    ...finals.map((f) => Date.parse(f.requestedAt)).filter(Number.isFinite),
  );

  const expectedIssued = Math.min(plan.coupons, plan.users);
  const row = (label: string, value: string | number) =>
    console.log(`  ${label.padEnd(38)} ${value}`);
  console.log('');
  console.log('=== First-come-first-served demo ===');
  row(
    'target',
    `${baseUrl} (${target.selfStarted ? 'started in-process by the demo' : 'running service'})`,
  );
  row('event', `coupon #${coupon.id}, ${plan.coupons} coupons`);
  row(
    'requests sent',
    `${attempts.length} (${plan.users} distinct users + ${plan.repeats} repeats)`,
  );
  console.log('  accept-time answers');
  row('  202 new request', requestIds.length);
  row('  202 same requestId (repeat)', acceptedAnswers - requestIds.length);
  row('  409 SOLD_OUT', count('SOLD_OUT'));
  row('  409 ALREADY_ISSUED', count('ALREADY_ISSUED'));
  row('  409 EVENT_NOT_OPEN', count('EVENT_NOT_OPEN'));
  row('  other', others.length);
  for (const [detail, n] of tally(others.map((a) => a.detail ?? '?')).slice(0, 5))
    row(`    ${detail}`, n);
  row(
    'repeats answered 202',
    `${repeatsAccepted}, ${usersWithSeveralIds.length} with a different requestId`,
  );
  console.log(`  final statuses (${poll.finals.size} of ${requestIds.length} accepted requests)`);
  row('  ISSUED', issued.length);
  for (const [reason, n] of [...rejectedByReason].sort()) row(`  REJECTED ${reason}`, n);
  row('  still PENDING', poll.pending.size);
  row('distinct users issued', issuesPerUser.size);
  row(
    `GET /coupons/${coupon.id}`,
    `issuedCount ${couponAfter.issuedCount}, remaining ${couponAfter.remaining}, status ${couponAfter.status}`,
  );
  row(
    'accept burst',
    `${ms(burstMs)} (${Math.round(attempts.length / (burstMs / 1000))} requests/s)`,
  );
  row(
    'last answer of the burst → all final',
    poll.pending.size === 0
      ? `${ms(poll.allFinalAfterMs)} (polling every ${POLL_INTERVAL_MS} ms)`
      : `not within ${FINAL_TIMEOUT_MS / 1000} s`,
  );
  if (Number.isFinite(lastDecided) && Number.isFinite(lastRequested)) {
    row('  server: last accept → last decision', ms(lastDecided - lastRequested));
  }
  if (poll.errors > 0)
    row('status polls that failed (retried)', `${poll.errors} (last: ${poll.lastError})`);

  if (opening) {
    row('before it opened', `${opening.early.join(', ')} (status ${opening.statusBefore})`);
    row(
      'opened by itself',
      `status ${opening.statusAfter}` +
        (opening.openJob === undefined ? '' : `, open job ran: ${opening.openJob ? 'yes' : 'no'}`),
    );
  }
  console.log('');

  const checks: [boolean, string, string][] = [
    ...(opening
      ? [
          [
            opening.early.every((answer) => answer === '409 EVENT_NOT_OPEN') &&
              opening.statusBefore === 'SCHEDULED' &&
              opening.statusAfter === 'OPEN' &&
              opening.openJob !== false,
            'refused before startsAt, open after it without anyone opening it',
            `before startsAt: ${opening.early.join(', ')} (status ${opening.statusBefore}); after: status ${opening.statusAfter}, open job ran: ${String(opening.openJob)}`,
          ] satisfies [boolean, string, string],
        ]
      : []),
    [
      issued.length === expectedIssued && couponAfter.issuedCount === expectedIssued,
      `issued ${issued.length} = min(${plan.coupons} coupons, ${plan.users} users)`,
      `issued ${issued.length} (coupon says ${couponAfter.issuedCount}), expected min(${plan.coupons}, ${plan.users}) = ${expectedIssued}`,
    ],
    [
      issuedTwice.length === 0 && issuesPerUser.size === issued.length,
      'no user issued twice',
      `${issuedTwice.length} users issued twice (${issuedTwice.slice(0, 3).join(', ')})`,
    ],
    [
      poll.pending.size === 0,
      `all ${requestIds.length} accepted requests final`,
      `${poll.pending.size} requests not final after ${FINAL_TIMEOUT_MS / 1000} s (${[...poll.pending].slice(0, 3).join(', ')})`,
    ],
    [
      usersWithSeveralIds.length === 0 && wrongUser === 0,
      'repeats kept their requestId',
      `${usersWithSeveralIds.length} users got two requestIds, ${wrongUser} requests reported another user`,
    ],
    [
      others.length === 0 && couponAfter.issuedCount + couponAfter.remaining === plan.coupons,
      'no unexpected answers',
      `${others.length} unexpected accept answers; issuedCount + remaining = ${couponAfter.issuedCount + couponAfter.remaining}`,
    ],
  ];
  const failed = checks.filter(([ok]) => !ok);
  if (failed.length === 0) {
    console.log(`PASS: ${checks.map(([, pass]) => pass).join('; ')}`);
    return 0;
  }
  console.log(`FAIL: ${failed.map(([, , fail]) => fail).join('; ')}`);
  return 1;
}

/**
 * Before `startsAt`: a few requests, each refused EVENT_NOT_OPEN, and the event
 * SCHEDULED. Then waits, without touching the event, until it reads OPEN and
 * a request is no longer refused EVENT_NOT_OPEN.
 */
async function waitForOpening(target: Target, couponId: number, startsAt: Date) {
  const { baseUrl } = target;
  const early: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const res = await fetch(`${baseUrl}/coupons/${couponId}/issue-requests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: `early-bird-${i}` }),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { code?: string };
    early.push(`${res.status} ${body.code ?? ''}`.trim());
  }
  const statusBefore = (await getJson<CouponView>(`${baseUrl}/coupons/${couponId}`)).status;
  console.log(
    `Event #${couponId} is scheduled to open at ${startsAt.toISOString()}; ` +
      `early requests answered ${early.join(', ')}. Waiting for it to open by itself...`,
  );
  let statusAfter = statusBefore;
  while (statusAfter !== 'OPEN' && Date.now() - startsAt.getTime() < FINAL_TIMEOUT_MS) {
    await sleep(Math.max(50, Math.min(500, startsAt.getTime() - Date.now())));
    statusAfter = (await getJson<CouponView>(`${baseUrl}/coupons/${couponId}`)).status;
  }
  // Redis decides by its own clock: a little margin so that the burst does not race it.
  await sleep(250);
  let openJob: boolean | undefined;
  if (target.openJobRan) {
    const deadline = Date.now() + 10_000;
    do openJob = await target.openJobRan(couponId);
    while (!openJob && Date.now() < deadline && (await sleep(100), true));
  }
  return {
    early,
    statusBefore,
    statusAfter,
    openJob,
  };
}

async function createCoupon(
  target: Target,
  totalQuantity: number,
  startsAt: Date | null,
): Promise<{ id: number }> {
  const res = await fetch(`${target.baseUrl}/coupons`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${target.adminToken}` },
    body: JSON.stringify({
      name: `demo ${new Date().toISOString()}`,
      totalQuantity,
      ...(startsAt ? { startsAt: startsAt.toISOString() } : {}),
    }),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const body = (await res.json().catch(() => ({}))) as {
    id?: number;
    code?: string;
    detail?: string;
  };
  if (res.status === 401) {
    throw new DemoError(
      `POST /coupons answered 401: set ADMIN_TOKEN to the admin token of the service at ${target.baseUrl}.`,
    );
  }
  if (res.status !== 201 || typeof body.id !== 'number') {
    throw new DemoError(
      `POST /coupons answered ${res.status} ${body.code ?? ''} ${body.detail ?? ''}`.trim(),
    );
  }
  return { id: body.id };
}

async function submit(baseUrl: string, couponId: number, attempt: Attempt): Promise<void> {
  try {
    const res = await fetch(`${baseUrl}/coupons/${couponId}/issue-requests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: attempt.userId }),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { requestId?: unknown; code?: unknown };
    if (res.status === 202 && typeof body.requestId === 'string') {
      attempt.outcome = 'ACCEPTED';
      attempt.requestId = body.requestId;
    } else if (
      res.status === 409 &&
      (body.code === 'SOLD_OUT' || body.code === 'ALREADY_ISSUED' || body.code === 'EVENT_NOT_OPEN')
    ) {
      attempt.outcome = body.code;
    } else {
      attempt.detail = `HTTP ${res.status}${typeof body.code === 'string' ? ` ${body.code}` : ''}`;
    }
  } catch (err) {
    attempt.detail = describeFetchError(err);
  }
}

/** Polls every request, POLL_CONCURRENCY at a time, until all are final or the time is up. */
async function pollUntilFinal(baseUrl: string, requestIds: readonly string[], since: number) {
  const pending = new Set(requestIds);
  const finals = new Map<string, FinalView>();
  let errors = 0;
  let lastError = '';
  while (pending.size > 0 && performance.now() - since < FINAL_TIMEOUT_MS) {
    await forEachLimited([...pending], POLL_CONCURRENCY, async (requestId) => {
      try {
        const res = await fetch(`${baseUrl}/issue-requests/${requestId}`, {
          signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
        });
        const body = (await res.json().catch(() => ({}))) as Partial<FinalView> & {
          status?: string;
          code?: string;
        };
        if (res.status !== 200) {
          errors += 1;
          lastError = `HTTP ${res.status} ${body.code ?? ''}`.trim();
        } else if (body.status === 'ISSUED' || body.status === 'REJECTED') {
          finals.set(requestId, body as FinalView);
          pending.delete(requestId);
        }
      } catch (err) {
        errors += 1;
        lastError = describeFetchError(err);
      }
    });
    if (pending.size > 0) await sleep(POLL_INTERVAL_MS);
  }
  if (pending.size > 0) {
    console.error(
      `!!! ${pending.size} of ${requestIds.length} requests were still not final ${FINAL_TIMEOUT_MS / 1000} s ` +
        'after the burst. Is the batch worker running?',
    );
  }
  return { pending, finals, errors, lastError, allFinalAfterMs: performance.now() - since };
}

async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  if (res.status !== 200) throw new DemoError(`GET ${url} answered ${res.status}`);
  return (await res.json()) as T;
}

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within the timeout`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

function tally(values: readonly string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

function ms(value: number): string {
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

function sleep(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToWait));
}

let exitCode: number;
try {
  exitCode = await main();
} catch (err) {
  if (err instanceof DemoError || err instanceof ConfigError || err instanceof StartupError) {
    console.error(err.message);
    exitCode = 1;
  } else {
    throw err;
  }
}
// Idle keep-alive sockets to a running service would otherwise hold the process open.
process.exit(exitCode);
