import { expect } from 'chai';
import type { Coupon } from '../../src/domain/coupon.js';
import { jobId } from '../../src/infra/jobs/lifecycle-queue.js';
import { PgCouponRepository } from '../../src/infra/db/coupon.repository.js';
import { createDatabase } from '../../src/infra/db/client.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { deploymentOf, message, ProcessFleet } from '../support/processes.js';
import { couponState, expectNoStrayExpiry } from '../support/state.js';
import { eventually, sleep } from '../support/eventually.js';

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

async function findCoupon(h: Harness, id: number): Promise<Coupon> {
  const coupon = await new PgCouponRepository(createDatabase(h.container.pool)).findById(id);
  if (!coupon) throw new Error(`coupon ${id} is gone`);
  return coupon;
}

async function row(h: Harness, id: number) {
  const { rows } = await h.container.pool.query<{
    startsAt: Date | null;
    endsAt: Date | null;
    closedAt: Date | null;
    retiredAt: Date | null;
  }>(
    `SELECT starts_at AS "startsAt", ends_at AS "endsAt", closed_at AS "closedAt",
            retired_at AS "retiredAt" FROM coupons WHERE id = $1`,
    [id],
  );
  if (!rows[0]) throw new Error(`coupon ${id} is gone`);
  return rows[0];
}

/** Every key of the coupon that exists, and whether the worker's rounds still hold it. */
async function couponKeys(h: Harness, id: number): Promise<{ keys: string[]; inRounds: boolean }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await h.container.redis.scan(
      cursor,
      'MATCH',
      `${h.prefix}coupon:{${id}}:*`,
      'COUNT',
      1000,
    );
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  const inRounds = await h.container.redis.sismember(h.container.keys.activeCoupons(), id);
  return { keys: keys.sort(), inRounds: inRounds === 1 };
}

async function jobState(h: Harness, id: string): Promise<string | undefined> {
  const job = await h.container.lifecycleQueue.job(id);
  return job ? await job.getState() : undefined;
}

const countLogged = (h: Harness, text: string, couponId: number) =>
  h.logged.filter((l) => l.message === text && l.meta.couponId === couponId).length;

describe('event lifecycle jobs (real Redis, PostgreSQL and BullMQ)', function () {
  this.timeout(90_000);

  describe('in one process', () => {
    let h: Harness;

    afterEach(async () => {
      await h?.cleanup();
    });

    it('when an event is created with a window a few seconds ahead, then it opens and closes by itself', async () => {
      h = await startHarness({ lifecycle: true });
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Runs itself',
        totalQuantity: 50,
        startsAt: inMs(2_000),
        endsAt: inMs(5_000),
      });

      const early = await requestIssue(h.baseUrl, couponId, 'early');
      expect([early.status, early.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);
      expect(countLogged(h, 'event opened', couponId)).to.equal(0);

      await eventually('the event to open', async () =>
        countLogged(h, 'event opened', couponId) === 1 ? true : undefined,
      );
      const onTime = await requestIssue(h.baseUrl, couponId, 'on-time');
      expect(onTime.status).to.equal(202);
      await drainAll(h.container);

      await eventually('the event to close', async () =>
        countLogged(h, 'event closed', couponId) === 1 ? true : undefined,
      );
      const stored = await row(h, couponId);
      // Closed by its window ending: at endsAt, so it reads ENDED rather than CLOSED.
      expect(stored.closedAt?.getTime()).to.equal(stored.endsAt?.getTime());
      expect(
        await h.container.redis.hget(h.container.keys.coupon(couponId).meta, 'closed'),
      ).to.equal('1');
      const late = await requestIssue(h.baseUrl, couponId, 'late');
      expect([late.status, late.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);
      const coupon = await http(h.baseUrl, 'GET', `/coupons/${couponId}`);
      expect(coupon.body).to.include({ status: 'ENDED', issuedCount: 1 });
      const state = await couponState(h.container, couponId);
      expect(state.requestRows.map((r) => [r.userId, r.status])).to.deep.equal([
        ['on-time', 'ISSUED'],
      ]);
      expect(countLogged(h, 'event opened', couponId)).to.equal(1);
      expect(countLogged(h, 'event closed', couponId)).to.equal(1);
      await expectNoStrayExpiry(h.container);
    });

    it('when the window is edited, then the jobs move with it and fire at the new times', async () => {
      h = await startHarness();
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Moved',
        totalQuantity: 10,
        startsAt: inMs(600_000),
        endsAt: inMs(1_200_000),
      });
      const before = await findCoupon(h, couponId);
      const oldOpen = jobId('open', couponId, before.startsAt!.getTime());
      const oldClose = jobId('close', couponId, before.endsAt!.getTime());
      expect(await jobState(h, oldOpen)).to.equal('delayed');
      expect(await jobState(h, oldClose)).to.equal('delayed');

      await h.container.pool.query(
        `UPDATE coupons SET starts_at = now() + interval '1 second',
                            ends_at = now() + interval '3 seconds' WHERE id = $1`,
        [couponId],
      );
      const after = await findCoupon(h, couponId);
      await h.container.api.scheduler.schedule(after);

      const newOpen = jobId('open', couponId, after.startsAt!.getTime());
      const newClose = jobId('close', couponId, after.endsAt!.getTime());
      expect(await jobState(h, oldOpen)).to.equal(undefined);
      expect(await jobState(h, oldClose)).to.equal(undefined);
      expect(await jobState(h, newOpen)).to.be.oneOf(['delayed', 'waiting']);
      expect(await jobState(h, newClose)).to.be.oneOf(['delayed', 'waiting']);

      await h.container.lifecycle.start();
      // The close job completes after everything it does (PostgreSQL, Redis, dropping jobs, the log).
      await eventually('the close job to complete', async () =>
        (await jobState(h, newClose)) === 'completed' ? true : undefined,
      );
      expect(countLogged(h, 'event opened', couponId)).to.equal(1);
      expect(countLogged(h, 'event closed', couponId)).to.equal(1);
      expect((await row(h, couponId)).closedAt?.getTime()).to.equal(after.endsAt!.getTime());
      // Once closed, its jobs are no longer due: the open job is dropped, the close job (running
      // when it dropped them) is kept as completed, so adding it again is a no-op.
      expect(await jobState(h, newOpen)).to.equal(undefined);
      expect(await jobState(h, newClose)).to.equal('completed');
      expect(await h.container.redis.hlen(h.container.keys.lifecycleJobs())).to.equal(0);
    });

    it('when the event closes with a backlog, then every request still waiting is settled EVENT_CLOSED', async () => {
      h = await startHarness({ lifecycle: true });
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Backlog',
        totalQuantity: 100,
        endsAt: inMs(5_000),
      });
      const users = Array.from({ length: 20 }, (_, i) => `u${String(i).padStart(2, '0')}`);
      const ids: string[] = [];
      for (const user of users) {
        const res = await requestIssue(h.baseUrl, couponId, user);
        expect(res.status).to.equal(202);
        ids.push(res.body.requestId);
      }
      // Five are decided and recorded before the end; fifteen still wait when it comes.
      const first = await h.container.processNextBatch.execute(couponId, 5, 30_000);
      expect(first?.settlement).to.equal('committed');

      await eventually('the event to close', async () =>
        countLogged(h, 'event closed', couponId) === 1 ? true : undefined,
      );
      await drainAll(h.container);

      const state = await couponState(h.container, couponId);
      const byStatus = (status: string, reason: string | null) =>
        state.requestRows.filter((r) => r.status === status && r.reason === reason).length;
      expect(state.requestRows).to.have.length(20);
      expect(byStatus('ISSUED', null)).to.equal(5);
      expect(byStatus('REJECTED', 'EVENT_CLOSED')).to.equal(15);
      expect([
        state.queued,
        state.inflight,
        state.pendingRecords,
        state.leasedBatches,
      ]).to.deep.equal([0, 0, 0, 0]);
      for (const [i, id] of ids.entries()) {
        const res = await http(h.baseUrl, 'GET', `/issue-requests/${id}`);
        expect(res.body.status, users[i]).to.equal(i < 5 ? 'ISSUED' : 'REJECTED');
      }
    });

    it('when a finished event has nothing left to decide, then reconcile retires it: no key remains and every status still answers', async () => {
      h = await startHarness({ lifecycle: true, env: { RECONCILE_EVERY_MS: '500' } });
      const soldOut = await createCoupon(h.baseUrl, { name: 'Sold out', totalQuantity: 3 });
      const closed = await createCoupon(h.baseUrl, { name: 'Closed', totalQuantity: 10 });
      const live = await createCoupon(h.baseUrl, { name: 'Live', totalQuantity: 10 });
      const requests: { couponId: number; id: string }[] = [];
      for (const [couponId, n] of [
        [soldOut, 5],
        [closed, 4],
        [live, 2],
      ] as const) {
        for (let i = 0; i < n; i += 1) {
          const res = await requestIssue(h.baseUrl, couponId, `user-${i}`);
          if (res.status === 202) requests.push({ couponId, id: res.body.requestId });
        }
      }
      await drainAll(h.container);
      await requestIssue(h.baseUrl, closed, 'waiting');
      await http(h.baseUrl, 'POST', `/coupons/${closed}/close`, { admin: true });
      await drainAll(h.container);

      for (const couponId of [soldOut, closed]) {
        await eventually(`coupon ${couponId} to be retired`, async () =>
          (await row(h, couponId)).retiredAt ? true : undefined,
        );
        expect(await couponKeys(h, couponId)).to.deep.equal({ keys: [], inRounds: false });
      }
      // The live event keeps its keys.
      expect((await couponKeys(h, live)).keys).to.have.length.above(0);
      expect((await row(h, live)).retiredAt).to.equal(null);

      for (const { couponId, id } of requests) {
        const res = await http(h.baseUrl, 'GET', `/issue-requests/${id}`);
        expect(res.status, `${couponId} ${id}`).to.equal(200);
        expect(res.body.status).to.be.oneOf(['ISSUED', 'REJECTED']);
      }
      const coupon = await http(h.baseUrl, 'GET', `/coupons/${soldOut}`);
      expect(coupon.body).to.include({ status: 'SOLD_OUT', issuedCount: 3 });
      const again = await requestIssue(h.baseUrl, soldOut, 'newcomer');
      expect([again.status, again.body.code]).to.deep.equal([409, 'SOLD_OUT']);
      const closedAgain = await requestIssue(h.baseUrl, closed, 'newcomer');
      expect([closedAgain.status, closedAgain.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);
      // Answered from PostgreSQL: the gate was not loaded back.
      expect(await couponKeys(h, soldOut)).to.deep.equal({ keys: [], inRounds: false });
      expect(await couponKeys(h, closed)).to.deep.equal({ keys: [], inRounds: false });
      expect(h.logged.filter((l) => l.message === 'event retired').map((l) => l.meta.couponId))
        .to.have.members([soldOut, closed])
        .and.have.length(2);
    });

    it('when an event has an end, then every key of it expires after the end, later when the end moves later, and never sooner', async () => {
      h = await startHarness();
      const afterEnd = h.container.config.keyExpiryAfterEndMs;
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Expiring',
        totalQuantity: 10,
        endsAt: inMs(3_600_000),
      });
      await requestIssue(h.baseUrl, couponId, 'ann');
      await requestIssue(h.baseUrl, couponId, 'bob');
      await h.container.processNextBatch.execute(couponId, 1, 30_000);
      await h.container.lifecycle.run('reconcile', {});

      const expiries = async () => {
        const out: Record<string, number> = {};
        for (const key of (await couponKeys(h, couponId)).keys) {
          out[key.slice(h.prefix.length)] = await h.container.redis.pexpiretime(key);
        }
        return out;
      };
      const endsAt = (await row(h, couponId)).endsAt!.getTime();
      const first = await expiries();
      expect(Object.keys(first)).to.include.members([
        `coupon:{${couponId}}:meta`,
        `coupon:{${couponId}}:issued`,
        `coupon:{${couponId}}:queue`,
        `coupon:{${couponId}}:requests`,
      ]);
      for (const at of Object.values(first)) expect(at).to.equal(endsAt + afterEnd);
      await expectNoStrayExpiry(h.container);

      await h.container.pool.query(
        `UPDATE coupons SET ends_at = ends_at + interval '1 hour' WHERE id = $1`,
        [couponId],
      );
      await h.container.lifecycle.run('reconcile', {});
      for (const at of Object.values(await expiries())) {
        expect(at).to.equal(endsAt + 3_600_000 + afterEnd);
      }
      await expectNoStrayExpiry(h.container);

      // The check itself catches an issued set that would expire with the event still running.
      await h.container.redis.pexpireat(h.container.keys.coupon(couponId).issued, endsAt + 1_000);
      let caught: unknown;
      await expectNoStrayExpiry(h.container).catch((err: unknown) => (caught = err));
      expect(String(caught)).to.include(`coupon:{${couponId}}:issued`);
    });

    it('when an open event lost its gate and its place in the rounds, then reconcile logs it and heals both', async () => {
      h = await startHarness();
      const couponId = await createCoupon(h.baseUrl, { name: 'Drifting', totalQuantity: 10 });
      const inRounds = await createCoupon(h.baseUrl, { name: 'Out of rounds', totalQuantity: 10 });
      await h.container.redis.del(h.container.keys.couponKeyList(couponId));
      await h.container.redis.srem(h.container.keys.activeCoupons(), couponId, inRounds);
      await h.container.redis.hset(h.container.keys.coupon(inRounds).meta, 'stock', '7');

      const report = await h.container.lifecycle.run('reconcile', {});

      expect(report).to.deep.include({
        loaded: [couponId],
        drifted: [inRounds],
        reactivated: [inRounds],
      });
      expect(
        await h.container.redis.hget(h.container.keys.coupon(couponId).meta, 'stock'),
      ).to.equal('10');
      expect((await couponKeys(h, inRounds)).inRounds).to.equal(true);
      const drift = h.logged.find((l) => l.message === 'reconcile: Redis and PostgreSQL differ');
      expect(drift?.level).to.equal('warn');
      expect(JSON.stringify(drift?.meta.drift)).to.include('STOCK_MISMATCH');
      // Stock drift is reported, not overwritten: a sync is the operator's call.
      expect(
        await h.container.redis.hget(h.container.keys.coupon(inRounds).meta, 'stock'),
      ).to.equal('7');
    });
  });

  describe('across worker processes', () => {
    let h: Harness;
    let fleet: ProcessFleet;

    beforeEach(async () => {
      h = await startHarness();
      fleet = new ProcessFleet(deploymentOf(h));
    });
    afterEach(async function () {
      if (this.currentTest?.state === 'failed') console.log(fleet.dump());
      await fleet.stopAll();
      await h.cleanup();
    });

    const lifecycleReady = (p: { waitForMessage: (text: string) => Promise<unknown> }) =>
      p.waitForMessage('lifecycle jobs started');

    it('when two worker processes run the jobs, then the event opens once and closes once', async () => {
      const workers = await Promise.all([
        fleet.start({ role: 'worker', name: 'worker-a' }),
        fleet.start({ role: 'worker', name: 'worker-b' }),
      ]);
      await Promise.all(workers.map(lifecycleReady));
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Two workers',
        totalQuantity: 10,
        startsAt: inMs(1_500),
        endsAt: inMs(4_000),
      });

      await eventually('the event to close', async () =>
        fleet.find(message('event closed', { couponId })).length > 0 ? true : undefined,
      );
      // Long enough for a second run of either job to have logged, were there one.
      await sleep(1_000);
      expect(fleet.find(message('event opened', { couponId }))).to.have.length(1);
      expect(fleet.find(message('event closed', { couponId }))).to.have.length(1);
      const stored = await row(h, couponId);
      expect(stored.closedAt?.getTime()).to.equal(stored.endsAt?.getTime());
    });

    it('when a worker is set to only drain (LIFECYCLE_JOBS=false), then it runs no lifecycle job: another worker opens the event, and the drain-only one still decides its requests', async () => {
      const drainOnly = await fleet.start({
        role: 'worker',
        name: 'drain-only',
        env: { LIFECYCLE_JOBS: 'false' },
      });
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Drain only',
        totalQuantity: 10,
        startsAt: inMs(500),
        endsAt: inMs(600_000),
      });
      await sleep(1_500);
      // Due a second ago and nobody to run it: the open job still waits.
      expect(
        await jobState(
          h,
          jobId('open', couponId, (await findCoupon(h, couponId)).startsAt!.getTime()),
        ),
      ).to.equal('delayed');
      const jobs = await fleet.start({ role: 'worker', name: 'jobs' });
      await jobs.waitForMessage('event opened', { couponId }, { timeoutMs: 30_000 });
      jobs.signal('SIGTERM');
      await jobs.waitForExit();
      const accepted = await requestIssue(h.baseUrl, couponId, 'drained');
      expect(accepted.status).to.equal(202);
      await eventually('the drain-only worker to decide the request', async () =>
        drainOnly.find(message('batch', { couponId })).length > 0 ? true : undefined,
      );

      expect(drainOnly.find(message('lifecycle jobs started'))).to.deep.equal([]);
      expect(drainOnly.find(message('event opened'))).to.deep.equal([]);
      expect(
        (
          await h.container.pool.query(
            "SELECT count(*)::int AS n FROM issued_coupons WHERE coupon_id = $1 AND user_id = 'drained'",
            [couponId],
          )
        ).rows[0]?.n,
      ).to.equal(1);
    });

    it('when the worker restarts between scheduling and firing, then the event still opens, once', async () => {
      const first = await fleet.start({ role: 'worker', name: 'before-restart' });
      await lifecycleReady(first);
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Restart',
        totalQuantity: 10,
        startsAt: inMs(3_000),
        endsAt: inMs(600_000),
      });
      expect(first.find(message('event opened', { couponId }))).to.have.length(0);
      await first.kill();

      const second = await fleet.start({ role: 'worker', name: 'after-restart' });
      await second.waitForMessage('event opened', { couponId }, { timeoutMs: 30_000 });
      expect(fleet.find(message('event opened', { couponId }))).to.have.length(1);
      expect(
        await h.container.redis.hget(h.container.keys.coupon(couponId).meta, 'opened'),
      ).to.equal('1');
      const accepted = await requestIssue(h.baseUrl, couponId, 'after');
      expect(accepted.status).to.equal(202);
    });

    it('when Redis lost the jobs, then the worker puts them back on start and they fire', async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Lost jobs',
        totalQuantity: 10,
        startsAt: inMs(2_000),
        endsAt: inMs(5_000),
      });
      const coupon = await findCoupon(h, couponId);
      const open = jobId('open', couponId, coupon.startsAt!.getTime());
      const close = jobId('close', couponId, coupon.endsAt!.getTime());
      expect(await jobState(h, open)).to.equal('delayed');
      let cursor = '0';
      do {
        const [next, keys] = await h.container.redis.scan(
          cursor,
          'MATCH',
          `${h.prefix}bull:*`,
          'COUNT',
          1000,
        );
        if (keys.length > 0) await h.container.redis.del(keys);
        cursor = next;
      } while (cursor !== '0');
      expect(await jobState(h, open)).to.equal(undefined);
      expect(await jobState(h, close)).to.equal(undefined);

      const worker = await fleet.start({ role: 'worker' });
      await lifecycleReady(worker);
      await worker.waitForMessage('event opened', { couponId }, { timeoutMs: 30_000 });
      await worker.waitForMessage('event closed', { couponId }, { timeoutMs: 30_000 });
      expect((await row(h, couponId)).closedAt).to.not.equal(null);
    });
  });
});
