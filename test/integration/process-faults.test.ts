import { expect } from 'chai';
import { parseRequestId } from '../../src/domain/issue-request.js';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { deploymentOf, message, ProcessFleet } from '../support/processes.js';
import { couponState, expectNoStrayExpiry, snapshot, type CouponState } from '../support/state.js';
import { eventually } from '../support/eventually.js';

/**
 * Real worker and API processes (`node --import tsx src/main.ts`) killed,
 * frozen and stopped in the middle of a batch, at the fault points the
 * service offers (FAULT_POINTS). The in-process harness provides the
 * database, the Redis key prefix, an API to submit requests to and a
 * container to read both stores with; its own worker is never run here.
 */

const LEASE_MS = 1_500;
/**
 * The lease of the workers that recover and drain (not those that crash or freeze). When
 * they pick up an expired batch depends on the lease its dead holder stored, not on theirs;
 * a short lease of their own would only let a stall on a loaded machine (more than 1.5 s
 * between a take and its fence) turn one of their own batches into one more ABANDONED row.
 */
const HEALTHY_LEASE_MS = 60_000;

interface Accepted {
  readonly userId: string;
  readonly requestId: string;
}

interface BatchRow {
  readonly batchId: string;
  readonly state: 'COMMITTED' | 'ABANDONED';
  readonly size: number;
}

interface RequestRow {
  readonly requestId: string;
  readonly userId: string;
  readonly status: string;
  readonly reason: string | null;
  readonly issueId: number | null;
  readonly decidedAt: string;
}

/** Submits one request per user, one after another, so arrival order is the order given. */
async function submitInOrder(
  baseUrl: string,
  couponId: number,
  users: readonly string[],
): Promise<Accepted[]> {
  const accepted: Accepted[] = [];
  for (const userId of users) {
    const res = await requestIssue(baseUrl, couponId, userId);
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    accepted.push({ userId, requestId: res.body.requestId });
  }
  return accepted;
}

async function batchRows(h: Harness, couponId: number): Promise<BatchRow[]> {
  const { rows } = await h.container.pool.query<BatchRow>(
    'SELECT batch_id AS "batchId", state, size FROM worker_batches WHERE coupon_id = $1 ORDER BY recorded_at, batch_id',
    [couponId],
  );
  return rows;
}

async function requestRows(h: Harness, couponId: number): Promise<RequestRow[]> {
  const { rows } = await h.container.pool.query<RequestRow>(
    `SELECT request_id AS "requestId", user_id AS "userId", status, reason, issue_id::int AS "issueId",
            decided_at::text AS "decidedAt"
       FROM issue_requests WHERE coupon_id = $1 ORDER BY request_id`,
    [couponId],
  );
  return rows;
}

/** The ids of the batches leased in Redis (taken, not yet settled). */
async function leasedBatchIds(h: Harness, couponId: number): Promise<string[]> {
  return h.container.redis.zrange(h.container.keys.coupon(couponId).leases, '0', '-1');
}

/**
 * Waits until every accepted request is recorded and Redis holds nothing queued, in flight or
 * leased. couponState reads table after table and then Redis, not one snapshot: a read that
 * straddles a commit can pair old issued rows with new outcome rows. Once Redis is seen idle,
 * every batch was acknowledged after its commit, so a second read taken after that is whole.
 */
function settled(h: Harness, couponId: number, requests: number, timeoutMs = 30_000) {
  const done = (s: CouponState) =>
    s.queued === 0 &&
    s.inflight === 0 &&
    s.pendingRecords === 0 &&
    s.leasedBatches === 0 &&
    s.requestRows.length >= requests;
  return eventually(
    `all ${requests} requests of coupon ${couponId} to be final and settled in Redis`,
    async () => {
      if (!done(await couponState(h.container, couponId))) return undefined;
      const state = await couponState(h.container, couponId);
      return done(state) ? state : undefined;
    },
    timeoutMs,
  );
}

/** Sorts accepted requests by their arrival (the queue's order). */
function byArrival(accepted: readonly Accepted[]): Accepted[] {
  return accepted.slice().sort((a, b) => {
    const x = BigInt(parseRequestId(a.requestId).arrival);
    const y = BigInt(parseRequestId(b.requestId).arrival);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * The invariants every scenario ends with:
 * I1 issued rows ≤ total; I2 no user issued twice; I3 every accepted request
 * is final (asked over HTTP); I4 Redis stock + issued rows = total, Redis's
 * issued set is exactly the issued rows' users, nothing queued, in flight or
 * leased. Plus: each accepted request has exactly one outcome row and no
 * request was decided in two committed batches (the committed batches' sizes
 * add up to the outcome rows).
 */
async function expectInvariants(
  h: Harness,
  couponId: number,
  accepted: readonly Accepted[],
): Promise<CouponState> {
  const requestIds = [...new Set(accepted.map((a) => a.requestId))];
  const state = await settled(h, couponId, requestIds.length);
  const issuedUsers = state.issuedRows.map((r) => r.userId);

  // I1
  expect(state.issuedRows.length).to.be.at.most(state.total);
  expect(state.issuedCount).to.equal(state.issuedRows.length);
  // I2
  expect(new Set(issuedUsers).size, 'a user was issued twice').to.equal(issuedUsers.length);
  // I3
  for (let i = 0; i < requestIds.length; i += 200) {
    const answers = await Promise.all(
      requestIds
        .slice(i, i + 200)
        .map((id) => http<{ status: string }>(h.baseUrl, 'GET', `/issue-requests/${id}`)),
    );
    for (const a of answers) {
      expect(a.status, JSON.stringify(a.body)).to.equal(200);
      expect(a.body.status).to.be.oneOf(['ISSUED', 'REJECTED']);
    }
  }
  // I4
  expect(state.redisStock + state.issuedRows.length).to.equal(state.total);
  expect(state.redisIssued).to.deep.equal(issuedUsers.slice().sort());
  expect([state.queued, state.inflight, state.pendingRecords, state.leasedBatches]).to.deep.equal([
    0, 0, 0, 0,
  ]);

  // Exactly one outcome row per accepted request, and none for anything else.
  expect(state.requestRows.map((r) => r.requestId).sort()).to.deep.equal(requestIds.slice().sort());
  // Issued rows and ISSUED outcomes are the same requests.
  expect(
    state.requestRows
      .filter((r) => r.status === 'ISSUED')
      .map((r) => r.requestId)
      .sort(),
  ).to.deep.equal(state.issuedRows.map((r) => r.requestId).sort());
  // No request decided twice: a committed batch replaying decided requests would add to the sizes.
  const committed = (await batchRows(h, couponId)).filter((b) => b.state === 'COMMITTED');
  expect(committed.reduce((sum, b) => sum + b.size, 0)).to.equal(state.requestRows.length);
  await expectNoStrayExpiry(h.container);
  return state;
}

/** First come, first served: the issued users are the first `stock` distinct users to arrive. */
function expectFirstArrivalsIssued(state: CouponState, accepted: readonly Accepted[]): void {
  const firstUsers: string[] = [];
  for (const a of byArrival(accepted)) {
    if (firstUsers.length === state.total) break;
    if (!firstUsers.includes(a.userId)) firstUsers.push(a.userId);
  }
  expect(state.issuedRows.map((r) => r.userId).sort()).to.deep.equal(firstUsers.sort());
}

describe('process faults: real worker processes killed, frozen and stopped mid-batch', function () {
  this.timeout(60_000);
  let h: Harness;
  let fleet: ProcessFleet;

  beforeEach(async () => {
    h = await startHarness();
    // The workers here only drain: a worker frozen while its lifecycle job held a transaction
    // (the open job's read of the gate takes the coupon's row FOR SHARE) would block the other
    // workers' commits of that coupon for half its lease, and one woken after the others drained
    // a sold-out event would retire it under the test. The lifecycle has suites of its own.
    fleet = new ProcessFleet({ ...deploymentOf(h), env: { LIFECYCLE_JOBS: 'false' } });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(fleet.dump());
    try {
      await fleet.stopAll();
    } finally {
      await h.cleanup();
    }
  });

  /** Starts a healthy worker and waits until it has recovered `batchId`; returns how it settled it. */
  async function recoverWithHealthyWorker(
    batchId: string | undefined,
    batchSize: number,
  ): Promise<unknown> {
    if (!batchId) throw new Error('no leased batch to recover');
    const healthy = await fleet.start({
      name: 'healthy',
      role: 'worker',
      batchSize,
      leaseMs: HEALTHY_LEASE_MS,
    });
    const recovered = await healthy.waitForMessage(
      'recovered an expired batch',
      { batchId },
      { timeoutMs: 30_000 },
    );
    return recovered.json?.settlement;
  }

  /** A crashed worker's first batch, and what it leaves behind. */
  async function crashFirstBatch(point: 'after-take' | 'before-commit' | 'after-commit') {
    const couponId = await createCoupon(h.baseUrl, { name: `Kill ${point}`, totalQuantity: 12 });
    // The gate queues no more requests than there is stock, so every one of them will be issued.
    const users = Array.from({ length: 12 }, (_, i) => `k${i + 1}`);
    const accepted = await submitInOrder(h.baseUrl, couponId, users);

    const doomed = fleet.spawn({
      name: 'doomed',
      role: 'worker',
      batchSize: 5,
      // One batch in hand, so "its batch" is well defined; two lanes are covered below.
      lanes: 1,
      leaseMs: LEASE_MS,
      faultPoints: `${point}=kill`,
    });
    await doomed.waitForMessage('fault point reached', { point, action: 'kill' });
    const exit = await doomed.waitForExit();
    expect(exit).to.deep.equal({ code: null, signal: 'SIGKILL' });
    expect(doomed.find(message('batch'))).to.deep.equal([]);

    const leased = await leasedBatchIds(h, couponId);
    expect(leased, 'the crashed batch stays leased in Redis').to.have.length(1);
    const crashedBatch = leased[0] as string;
    const between = await couponState(h.container, couponId);
    // Redis: the first five were taken and decided ISSUED, the rest still wait.
    expect(between.redisIssued).to.deep.equal(users.slice(0, 5).sort());
    expect(between.redisStock).to.equal(7);
    expect([between.queued, between.inflight, between.pendingRecords]).to.deep.equal([7, 5, 12]);
    return { couponId, users, accepted, crashedBatch, between };
  }

  describe('SIGKILL at each step of a batch', () => {
    for (const point of ['after-take', 'before-commit'] as const) {
      it(`when a worker is killed at ${point}, then PostgreSQL holds nothing of its batch, and a healthy worker fences it off (ABANDONED), compensates it and decides its requests again, first come first served`, async () => {
        const { couponId, accepted, crashedBatch, between } = await crashFirstBatch(point);
        expect(between.issuedRows).to.deep.equal([]);
        expect(between.requestRows).to.deep.equal([]);
        expect(between.issuedCount).to.equal(0);
        expect(await batchRows(h, couponId)).to.deep.equal([]);

        expect(await recoverWithHealthyWorker(crashedBatch, 5)).to.equal('compensated');

        const state = await expectInvariants(h, couponId, accepted);
        expect(state.issuedRows).to.have.length(12);
        expectFirstArrivalsIssued(state, accepted);
        const rows = await batchRows(h, couponId);
        expect(rows.filter((b) => b.batchId === crashedBatch)).to.deep.equal([
          { batchId: crashedBatch, state: 'ABANDONED', size: 5 },
        ]);
        expect(rows.filter((b) => b.state === 'ABANDONED')).to.have.length(1);
      });
    }

    it('when a worker is killed at after-commit, then PostgreSQL holds its batch while Redis still leases it, and a healthy worker rolls it forward without deciding anything again', async () => {
      const { couponId, users, accepted, crashedBatch, between } =
        await crashFirstBatch('after-commit');
      expect(between.issuedRows.map((r) => r.userId)).to.deep.equal(users.slice(0, 5));
      expect(between.issuedCount).to.equal(5);
      expect(await batchRows(h, couponId)).to.deep.equal([
        { batchId: crashedBatch, state: 'COMMITTED', size: 5 },
      ]);
      const committedRows = await requestRows(h, couponId);
      expect(committedRows.map((r) => r.userId).sort()).to.deep.equal(users.slice(0, 5).sort());
      expect(committedRows.every((r) => r.status === 'ISSUED')).to.equal(true);

      expect(await recoverWithHealthyWorker(crashedBatch, 5)).to.equal('committed');

      const state = await expectInvariants(h, couponId, accepted);
      expect(state.issuedRows).to.have.length(12);
      expectFirstArrivalsIssued(state, accepted);
      const rows = await batchRows(h, couponId);
      expect(rows.find((b) => b.batchId === crashedBatch)?.state).to.equal('COMMITTED');
      expect(
        rows.filter((b) => b.state === 'ABANDONED'),
        'nothing was compensated',
      ).to.deep.equal([]);
      // The rolled-forward outcomes are the very rows the crashed worker committed.
      const after = await requestRows(h, couponId);
      for (const row of committedRows) {
        expect(after.find((r) => r.requestId === row.requestId)).to.deep.equal(row);
      }
    });
  });

  describe('SIGKILL with two batches in flight (BATCH_LANES=2)', () => {
    it('when a two-lane worker is killed as its first batch is about to commit, then every batch it held is settled by a healthy worker, first come first served', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Kill two lanes', totalQuantity: 12 });
      const users = Array.from({ length: 12 }, (_, i) => `m${i + 1}`);
      const accepted = await submitInOrder(h.baseUrl, couponId, users);

      const doomed = fleet.spawn({
        name: 'doomed',
        role: 'worker',
        batchSize: 5,
        lanes: 2,
        // The pause after each take lets both lanes hold a batch before the first one dies;
        // two seconds leave the second lane time to take its batch however loaded the machine
        // (its first pass also does the worker's start-up chores). The lease outlasts the pause,
        // so the worker never recovers its own batch before it dies.
        leaseMs: 6_000,
        faultPoints: 'after-take=delay:2000,before-commit=kill',
      });
      await doomed.waitForMessage('fault point reached', {
        point: 'before-commit',
        action: 'kill',
      });
      expect(await doomed.waitForExit()).to.deep.equal({ code: null, signal: 'SIGKILL' });

      // Each lane held a batch of five; the other two requests still wait in the queue.
      const leased = await leasedBatchIds(h, couponId);
      expect(leased).to.have.length(2);
      const between = await couponState(h.container, couponId);
      expect(between.requestRows).to.deep.equal([]);
      expect([between.queued, between.inflight]).to.deep.equal([2, 10]);

      const healthy = await fleet.start({
        name: 'healthy',
        role: 'worker',
        batchSize: 5,
        leaseMs: HEALTHY_LEASE_MS,
      });
      for (const batchId of leased) {
        const recovered = await healthy.waitForMessage(
          'recovered an expired batch',
          { batchId },
          { timeoutMs: 30_000 },
        );
        expect(recovered.json?.settlement).to.equal('compensated');
      }

      const state = await expectInvariants(h, couponId, accepted);
      expect(state.issuedRows).to.have.length(12);
      expectFirstArrivalsIssued(state, accepted);
      const rows = await batchRows(h, couponId);
      expect(
        rows
          .filter((b) => b.state === 'ABANDONED')
          .map((b) => b.batchId)
          .sort(),
      ).to.deep.equal(leased.slice().sort());
    });
  });

  describe('SIGSTOP for longer than the lease', () => {
    it('when a worker freezes after taking a batch (no transaction open), then another worker fences the batch off and decides it again, and the frozen worker, woken, changes nothing', async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Frozen after take',
        totalQuantity: 12,
      });
      const users = Array.from({ length: 12 }, (_, i) => `s${i + 1}`);
      const accepted = await submitInOrder(h.baseUrl, couponId, users);

      const frozen = fleet.spawn({
        name: 'frozen',
        role: 'worker',
        batchSize: 5,
        lanes: 1,
        leaseMs: LEASE_MS,
        faultPoints: 'after-take=stop',
      });
      await frozen.waitForMessage('fault point reached', { point: 'after-take', action: 'stop' });
      await frozen.waitStopped();
      const [frozenBatch, ...others] = await leasedBatchIds(h, couponId);
      expect(others).to.deep.equal([]);

      expect(await recoverWithHealthyWorker(frozenBatch, 5)).to.equal('compensated');
      const state = await expectInvariants(h, couponId, accepted);
      expect(state.issuedRows).to.have.length(12);
      expectFirstArrivalsIssued(state, accepted);
      expect((await batchRows(h, couponId)).find((b) => b.batchId === frozenBatch)?.state).to.equal(
        'ABANDONED',
      );
      expect(frozen.schedulerState(), 'still frozen all along').to.be.oneOf(['T', 't']);

      // Wake the frozen worker: it goes on to commit the batch it holds, long after it was given up.
      const before = await snapshot(h.container, h.prefix);
      const from = frozen.lines.length;
      frozen.signal('SIGCONT');
      const ended = await frozen.waitForLine(
        (l) =>
          (l.message === 'batch' || l.message === 'drain backing off') &&
          l.json?.batchId === frozenBatch,
        { fromIndex: from, description: `the end of batch ${frozenBatch}` },
      );
      // Its commit met the ABANDONED fence and rolled back; its compensation found nothing to undo.
      expect([ended.message, ended.json?.settlement]).to.deep.equal([
        'drain backing off',
        'compensated',
      ]);
      expect(frozen.find(message('batch'))).to.deep.equal([]);
      expect(frozen.running).to.equal(true);
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
      await expectInvariants(h, couponId, accepted);
    });

    it('when a worker freezes inside its batch transaction (before COMMIT), then the server aborts that transaction, another worker fences the batch off and decides it again while the frozen one still sleeps, and the frozen worker, woken, changes nothing', async () => {
      // One batch holds every request, so the healthy worker has nothing to take and goes straight to recovery.
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Frozen in transaction',
        totalQuantity: 8,
      });
      const users = Array.from({ length: 8 }, (_, i) => `t${i + 1}`);
      const accepted = await submitInOrder(h.baseUrl, couponId, users);

      const frozen = fleet.spawn({
        name: 'frozen',
        role: 'worker',
        batchSize: 10,
        lanes: 1,
        leaseMs: LEASE_MS,
        faultPoints: 'before-commit=stop',
      });
      await frozen.waitForMessage('fault point reached', {
        point: 'before-commit',
        action: 'stop',
      });
      await frozen.waitStopped();
      const [frozenBatch, ...others] = await leasedBatchIds(h, couponId);
      expect(others).to.deep.equal([]);
      expect(await batchRows(h, couponId)).to.deep.equal([]);

      // The frozen transaction is aborted by the server (idle_in_transaction_session_timeout is
      // below the lease), so the fence does not wait on it: the batch is recovered while the
      // frozen worker still sleeps.
      expect(await recoverWithHealthyWorker(frozenBatch, 10)).to.equal('compensated');
      await eventually('every request to be decided while the worker is frozen', async () =>
        (await couponState(h.container, couponId)).requestRows.length === 8 ? true : undefined,
      );
      expect(frozen.running).to.equal(true);
      const settled = await expectInvariants(h, couponId, accepted);
      expect(settled.issuedRows).to.have.length(8);
      expectFirstArrivalsIssued(settled, accepted);
      expect((await batchRows(h, couponId)).find((b) => b.batchId === frozenBatch)?.state).to.equal(
        'ABANDONED',
      );
      const before = await snapshot(h.container, h.prefix);

      const from = frozen.lines.length;
      frozen.signal('SIGCONT');
      // Its COMMIT meets a closed session; it asks PostgreSQL, finds the fence, and its compensation finds nothing to undo.
      const ended = await frozen.waitForLine(
        (l) => l.message === 'drain backing off' && l.json?.batchId === frozenBatch,
        { fromIndex: from, description: `the end of batch ${frozenBatch}` },
      );
      await frozen.kill();

      expect(ended.json?.settlement).to.equal('compensated');
      expect(frozen.lines.slice(from).some((l) => l.message === 'batch')).to.equal(false);
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
      await expectInvariants(h, couponId, accepted);
    });
  });

  describe('several workers and API processes at once', () => {
    const STOCK = 500;
    const USERS = 2_000;
    const REQUESTS = 3_000;
    const userFor = (i: number) => (i < USERS ? `crowd-${i}` : `crowd-${(i - USERS) * 2}`);

    it(`when ${REQUESTS} requests from ${USERS} users reach two API processes while one worker holds the first batch frozen and two others drain the rest in batches faster than the interval, then exactly ${STOCK} are issued, first come first served, no request is decided twice, and the frozen batch commits when its worker wakes`, async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Crowd', totalQuantity: STOCK });
      // Thousands of requests on two cores: the accept path's own bound is not under test here.
      const apiProcs = await Promise.all(
        [1, 2].map((n) =>
          fleet.start({
            name: `api-${n}`,
            role: 'api',
            env: { REDIS_COMMAND_TIMEOUT_MS: '10000' },
          }),
        ),
      );
      const apis = apiProcs.map((p) => p.baseUrl);
      // The first worker runs alone when the first request arrives, so it takes that request,
      // and freezes right after the take. Its lease outlasts the test, so nobody recovers the
      // batch: the other two workers must drain everything after it. That several workers
      // commit is so by construction, not by how the two cores happen to schedule them.
      const holder = await fleet.start({
        name: 'worker-1',
        role: 'worker',
        batchSize: 50,
        batchIntervalMs: 1,
        lanes: 1,
        leaseMs: 600_000,
        faultPoints: 'after-take=stop',
      });
      const first = await requestIssue(apis[0] as string, couponId, userFor(0));
      expect(first.status, JSON.stringify(first.body)).to.equal(202);
      await holder.waitForMessage('fault point reached', { point: 'after-take', action: 'stop' });
      await holder.waitStopped();
      const [heldBatch, ...otherLeases] = await leasedBatchIds(h, couponId);
      expect(otherLeases).to.deep.equal([]);

      const drainers = await Promise.all(
        [2, 3].map((n) =>
          fleet.start({
            name: `worker-${n}`,
            role: 'worker',
            batchSize: 50,
            batchIntervalMs: 1,
            leaseMs: HEALTHY_LEASE_MS,
          }),
        ),
      );
      const workers = [holder, ...drainers];
      const procs = [...apiProcs, ...workers];

      const answers = [{ userId: userFor(0), res: first }].concat(
        await mapLimit(REQUESTS - 1, 200, async (j) => {
          const i = j + 1;
          const userId = userFor(i);
          const res = await requestIssue(apis[i % apis.length] as string, couponId, userId);
          return { userId, res };
        }),
      );

      for (const { res } of answers) {
        expect(res.status, JSON.stringify(res.body)).to.be.oneOf([202, 409]);
        if (res.status === 409) expect(res.body.code).to.be.oneOf(['SOLD_OUT', 'ALREADY_ISSUED']);
      }
      const accepted: Accepted[] = answers
        .filter((a) => a.res.status === 202)
        .map((a) => ({ userId: a.userId, requestId: a.res.body.requestId }));
      // One place per user: every 202 of one user names the same request.
      const idOf = new Map<string, string>();
      for (const a of accepted) {
        expect(a.requestId).to.equal(idOf.get(a.userId) ?? a.requestId);
        idOf.set(a.userId, a.requestId);
      }
      // The gate never queues more requests than there is stock left: exactly STOCK got a place.
      expect(idOf.size).to.equal(STOCK);

      // Everything but the frozen batch is decided, recorded and acknowledged while its worker
      // sleeps. (A batch's rows are committed before Redis hears of it: until then it is still
      // leased, so rows alone do not say that the drainers are done.)
      await eventually(
        'the two running workers to drain and settle everything after the held batch',
        async () => {
          const s = await couponState(h.container, couponId);
          const done =
            s.queued === 0 &&
            s.requestRows.length === STOCK - 1 &&
            s.leasedBatches === 1 &&
            s.inflight === 1;
          return done ? true : undefined;
        },
      );
      expect(await leasedBatchIds(h, couponId)).to.deep.equal([heldBatch]);
      expect(holder.find(message('batch'))).to.deep.equal([]);

      holder.signal('SIGCONT');
      const held = await holder.waitForMessage('batch', { batchId: heldBatch });
      expect([held.json?.settlement, held.json?.size]).to.deep.equal(['committed', 1]);

      const state = await expectInvariants(h, couponId, accepted);
      expect(state.issuedRows).to.have.length(STOCK);
      expect(state.issuedCount).to.equal(STOCK);
      expectFirstArrivalsIssued(state, accepted);
      // The first arrival kept its coupon though its batch was recorded last.
      expect(state.requestRows.find((r) => r.requestId === first.body.requestId)?.status).to.equal(
        'ISSUED',
      );

      // Every committed batch was logged once, by the worker that committed it.
      const batchLines = workers.flatMap((w) => w.find(message('batch')));
      const rows = await batchRows(h, couponId);
      const committed = rows.filter((b) => b.state === 'COMMITTED');
      expect(batchLines.every((l) => l.json?.settlement === 'committed')).to.equal(true);
      expect(committed).to.have.length(batchLines.length);
      expect(new Set(batchLines.map((l) => l.json?.batchId))).to.deep.equal(
        new Set(committed.map((b) => b.batchId)),
      );
      expect(batchLines.reduce((sum, l) => sum + Number(l.json?.size), 0)).to.equal(idOf.size);
      expect(
        workers.filter((w) => w.find(message('batch')).length > 0).length,
        'workers that committed a batch',
      ).to.be.at.least(2);
      for (const p of procs) expect(p.running, `${p.name} is still running`).to.equal(true);
    });
  });

  describe('SIGTERM during a batch', () => {
    it('when a worker is told to stop while its batch waits before COMMIT, then it finishes and commits that batch, takes no other, exits 0, and another worker drains the rest', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Graceful', totalQuantity: 20 });
      const users = Array.from({ length: 20 }, (_, i) => `g${i + 1}`);
      const accepted = await submitInOrder(h.baseUrl, couponId, users);

      const stopping = fleet.spawn({
        name: 'stopping',
        role: 'worker',
        batchSize: 5,
        lanes: 1,
        // The signal must arrive while the batch waits: the delay leaves the test seconds to
        // send it. The lease keeps the server's idle-in-transaction limit (half the lease,
        // 8 s) well above the delay.
        leaseMs: 16_000,
        faultPoints: 'before-commit=delay:4000',
      });
      await stopping.waitForMessage('fault point reached', {
        point: 'before-commit',
        action: 'delay',
      });
      const [batchInHand, ...others] = await leasedBatchIds(h, couponId);
      expect(others).to.deep.equal([]);
      stopping.signal('SIGTERM');
      expect(await stopping.waitForExit()).to.deep.equal({ code: 0, signal: null });

      const shutdown = stopping.find(message('shutting down', { signal: 'SIGTERM' }));
      const batches = stopping.find(message('batch'));
      expect(shutdown).to.have.length(1);
      expect(batches.map((l) => [l.json?.batchId, l.json?.settlement, l.json?.size])).to.deep.equal(
        [[batchInHand, 'committed', 5]],
      );
      expect(
        (batches[0] as { seq: number }).seq,
        'the batch ended after the signal',
      ).to.be.greaterThan((shutdown[0] as { seq: number }).seq);

      // Nothing in flight or leased: the batch is in PostgreSQL, the rest waits in the queue in order.
      const between = await couponState(h.container, couponId);
      expect([
        between.inflight,
        between.leasedBatches,
        between.queued,
        between.pendingRecords,
      ]).to.deep.equal([0, 0, 15, 15]);
      expect(await batchRows(h, couponId)).to.deep.equal([
        { batchId: batchInHand, state: 'COMMITTED', size: 5 },
      ]);
      expect(between.issuedRows.map((r) => r.userId)).to.deep.equal(users.slice(0, 5));
      expect(between.redisIssued).to.deep.equal(users.slice(0, 5).sort());

      await fleet.start({
        name: 'successor',
        role: 'worker',
        batchSize: 5,
        leaseMs: HEALTHY_LEASE_MS,
      });
      const state = await expectInvariants(h, couponId, accepted);
      expect(state.issuedRows).to.have.length(20);
      expectFirstArrivalsIssued(state, accepted);
      expect((await batchRows(h, couponId)).filter((b) => b.state === 'ABANDONED')).to.deep.equal(
        [],
      );
    });
  });
});

/** Runs fn(0..count-1) with at most `limit` calls in flight; results in index order. */
async function mapLimit<T>(
  count: number,
  limit: number,
  fn: (i: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const i = next;
        next += 1;
        results[i] = await fn(i);
      }
    }),
  );
  return results;
}
