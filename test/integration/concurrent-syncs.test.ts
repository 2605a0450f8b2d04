import { expect } from 'chai';
import sinon from 'sinon';
import { DomainError } from '../../src/domain/errors.js';
import type { SyncCoupon } from '../../src/domain/use-cases/sync-coupon.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { couponState, expectNoStrayExpiry } from '../support/state.js';

const LEASE_MS = 2_000;

interface Consistency {
  consistent: boolean;
  drift: { code: string }[];
  redis: { paused?: boolean };
}

const consistency = (h: Harness, couponId: number) =>
  http<Consistency>(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, { admin: true });
const sync = (h: Harness, couponId: number) =>
  http<{ code?: string }>(h.baseUrl, 'POST', `/coupons/${couponId}/sync`, { admin: true });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * The second process's sync of the coupon, with `meanwhile` run after it read
 * PostgreSQL and before it swaps the gate: the window in which an older
 * design let another sync finish, draining resume, and then swapped in the
 * older snapshot.
 */
function laggingSync(other: Harness, meanwhile: () => Promise<void>): SyncCoupon {
  const maintenance = other.container.maintenance;
  const swap = maintenance.replace.bind(maintenance);
  let once = false;
  sinon.stub(maintenance, 'replace').callsFake(async (...args: Parameters<typeof swap>) => {
    if (!once) {
      once = true;
      await meanwhile();
    }
    return swap(...args);
  });
  return other.container.api.syncCoupon;
}

/**
 * Everything final, then: no drift, issued ≤ stock, one per user, Redis's
 * issued set is PostgreSQL's, nothing queued or in flight, every accepted
 * request final, and an issued user asking again is refused.
 */
async function expectSettledWithoutDrift(
  h: Harness,
  couponId: number,
  accepted: readonly string[],
): Promise<void> {
  await waitFor('every accepted request to be final', async () => {
    const state = await couponState(h.container, couponId);
    const final = new Set(state.requestRows.map((r) => r.requestId));
    return (
      accepted.every((id) => final.has(id)) &&
      state.queued + state.inflight + state.pendingRecords + state.leasedBatches === 0
    );
  });
  const state = await couponState(h.container, couponId);
  const issuedUsers = state.issuedRows.map((r) => r.userId);
  expect(issuedUsers.length).to.be.at.most(state.total);
  expect(state.issuedCount).to.equal(issuedUsers.length);
  expect(new Set(issuedUsers).size, 'a user was issued twice').to.equal(issuedUsers.length);
  expect(state.redisIssued).to.deep.equal([...issuedUsers].sort());
  expect(state.redisStock).to.equal(state.total - issuedUsers.length);
  const report = await consistency(h, couponId);
  expect(report.body.drift, JSON.stringify(report.body)).to.deep.equal([]);
  for (const id of accepted.slice(0, 200)) {
    const view = await http(h.baseUrl, 'GET', `/issue-requests/${id}`);
    expect(view.body.status, id).to.be.oneOf(['ISSUED', 'REJECTED']);
  }
  for (const user of issuedUsers.slice(0, 50)) {
    const again = await requestIssue(h.baseUrl, couponId, user);
    expect([again.status, again.body.code], user).to.deep.equal([409, 'ALREADY_ISSUED']);
  }
  await expectNoStrayExpiry(h.container);
}

describe('syncs of one coupon from several processes', function () {
  this.timeout(180_000);
  let h: Harness;
  let other: Harness;

  beforeEach(async () => {
    h = await startHarness({ env: { LEASE_MS: String(LEASE_MS) } });
    // A second process of the same deployment: same database, same key space.
    other = await startHarness({
      databaseUrl: h.databaseUrl,
      prefix: h.prefix,
      env: { LEASE_MS: String(LEASE_MS) },
    });
  });
  afterEach(async () => {
    sinon.restore();
    await other.cleanup();
    await h.cleanup();
  });

  it('when a sync read PostgreSQL while another process synced the coupon and drained it, then its older snapshot never replaces the newer gate', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Overlap', totalQuantity: 5 });
    await requestIssue(h.baseUrl, couponId, 'o1');
    await drainAll(h.container);
    const late = await requestIssue(h.baseUrl, couponId, 'o2');
    expect(late.status).to.equal(202);
    let first: Promise<{ status: number }> | undefined;
    const lagging = laggingSync(other, async () => {
      // The other process syncs the same coupon and then drains it, while this sync holds
      // its snapshot. A sync that must wait for this one is given a second before going on.
      first = sync(h, couponId);
      await Promise.race([first, sleep(1_000)]);
      await h.container.worker.drainOnce();
    });

    await lagging.execute(couponId);
    expect((await first)?.status).to.equal(200);
    await drainAll(h.container);

    const state = await couponState(h.container, couponId);
    expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['o1', 'o2']);
    await expectSettledWithoutDrift(h, couponId, [late.body.requestId]);
  });

  it('when a sync outlived its lock and the coupon was drained and synced meanwhile, then it applies nothing and says SYNC_LOCK_LOST', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Expired lock', totalQuantity: 5 });
    await requestIssue(h.baseUrl, couponId, 'e1');
    await drainAll(h.container);
    const late = await requestIssue(h.baseUrl, couponId, 'e2');
    const k = h.container.keys.coupon(couponId);
    const lagging = laggingSync(other, async () => {
      // What the lock's expiry looks like to everyone else: the key is gone.
      await h.container.redis.del(k.sync);
      await drainAll(h.container);
      expect((await sync(h, couponId)).status).to.equal(200);
    });

    const error = await lagging.execute(couponId).catch((err: unknown) => err);

    expect(error).to.be.instanceOf(DomainError);
    expect((error as DomainError).code).to.equal('SYNC_LOCK_LOST');
    const state = await couponState(h.container, couponId);
    expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['e1', 'e2']);
    expect(state.redisIssued).to.deep.equal(['e1', 'e2']);
    expect(state.redisStock).to.equal(3);
    expect(await h.container.redis.exists(k.sync)).to.equal(0);
    await expectSettledWithoutDrift(h, couponId, [late.body.requestId]);
  });

  it('when a sync died holding the lock, then no batch is taken until the lock expires and draining resumes by itself', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Dead sync', totalQuantity: 5 });
    const waiting = await requestIssue(h.baseUrl, couponId, 'd1');
    const k = h.container.keys.coupon(couponId);
    const token = await h.container.maintenance.lockSync(couponId, 3_000);
    expect(token).to.be.a('string');

    expect(await h.container.queue.take(couponId, 10, LEASE_MS, 'while-locked')).to.equal(null);
    const report = await consistency(h, couponId);
    expect(report.body.drift.map((d) => d.code)).to.deep.equal(['DRAINING_PAUSED']);
    // The lock is the one key besides scratch sets that expires by design.
    await expectNoStrayExpiry(h.container);
    await waitFor('the lock to expire', async () => (await h.container.redis.exists(k.sync)) === 0);
    await drainAll(h.container);

    const view = await http(h.baseUrl, 'GET', `/issue-requests/${waiting.body.requestId}`);
    expect(view.body.status).to.equal('ISSUED');
    await expectSettledWithoutDrift(h, couponId, [waiting.body.requestId]);
  });

  it('when rounds of 20 simultaneous syncs hit two processes while both accept and drain a crowd, then every sync succeeds and nothing drifts', async () => {
    const total = 300;
    const couponId = await createCoupon(h.baseUrl, { name: 'Sync storm', totalQuantity: total });
    const processes = [h, other];
    for (const p of processes) p.container.worker.start();
    let accepted: string[] = [];
    try {
      let arriving = true;
      const crowd = (async () => {
        const ids: string[] = [];
        // Waves, so that requests keep arriving while the syncs run; some users ask twice.
        for (let wave = 0; wave < 10; wave += 1) {
          const answers = await Promise.all(
            Array.from({ length: 60 }, (_, i) =>
              requestIssue(
                (processes[i % 2] as Harness).baseUrl,
                couponId,
                `storm-${(wave * 60 + i) % 500}`,
              ),
            ),
          );
          for (const a of answers) {
            expect(a.status, JSON.stringify(a.body)).to.be.oneOf([202, 409]);
            if (a.status === 202) ids.push(a.body.requestId);
          }
          await sleep(50);
        }
        arriving = false;
        return ids;
      })();
      const syncs: number[] = [];
      const storms = (async () => {
        for (let round = 0; round < 5 || arriving; round += 1) {
          const answers = await Promise.all(
            Array.from({ length: 20 }, (_, i) => sync(processes[i % 2] as Harness, couponId)),
          );
          syncs.push(...answers.map((a) => a.status));
          for (const a of answers) expect(a.status, JSON.stringify(a.body)).to.equal(200);
        }
      })();
      [accepted] = await Promise.all([crowd, storms]);
      expect(syncs.length).to.be.at.least(100);
      await expectSettledWithoutDrift(h, couponId, [...new Set(accepted)]);
    } finally {
      for (const p of processes) await p.container.worker.stop();
    }
    expect(accepted.length).to.be.at.least(total);
  });
});

describe('syncs after a Redis restart under load (a private redis-server)', function () {
  this.timeout(180_000);
  let redis: PrivateRedis | undefined;
  let processes: Harness[] = [];

  afterEach(async () => {
    try {
      if (redis && !redis.running) await redis.restart();
      for (const p of processes.slice().reverse()) await p.cleanup();
    } finally {
      processes = [];
      await redis?.stop();
      redis = undefined;
    }
  });

  it('when Redis restarts with its data while two processes accept and drain, then both workers sync the coupon and nothing drifts', async () => {
    redis = await startPrivateRedis({ appendOnly: true });
    const env = { REDIS_URL: redis.url, LEASE_MS: String(LEASE_MS) };
    const first = await startHarness({ env });
    processes.push(first);
    processes.push(
      await startHarness({ databaseUrl: first.databaseUrl, prefix: first.prefix, env }),
    );
    const total = 200;
    const couponId = await createCoupon(first.baseUrl, { name: 'Restart', totalQuantity: total });
    for (const p of processes) p.container.worker.start();
    const accepted: string[] = [];
    try {
      const ask = async (wave: number) => {
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            requestIssue(
              (processes[i % 2] as Harness).baseUrl,
              couponId,
              `restart-${(wave * 40 + i) % 350}`,
            ).catch(() => undefined),
          ),
        );
        for (const a of answers) if (a?.status === 202) accepted.push(a.body.requestId);
      };
      const restartSyncs = (p: Harness) =>
        p.logged.filter(
          (l) => l.message === 'Redis restarted: syncing coupon gates from PostgreSQL',
        ).length;
      for (let round = 0; round < 3; round += 1) {
        await ask(2 * round);
        // Each worker notes the running server, so that it sees the restart as one.
        await Promise.all(processes.map((p) => p.container.worker.maintain()));
        // A restart with the data kept (AOF, fsync per write): every worker syncs its live coupons.
        await redis.restart();
        await waitFor('both processes to reconnect', async () => {
          for (const p of processes) {
            await Promise.all([p.container.redis.ping(), p.container.workerRedis.ping()]);
          }
          return true;
        });
        await Promise.all([
          ask(2 * round + 1),
          ...processes.map((p) => sync(p, couponId)),
          ...processes.map((p) => sync(p, couponId)),
        ]);
        await waitFor('both workers to sync after the restart', async () =>
          processes.every((p) => restartSyncs(p) > round),
        );
      }
      await expectSettledWithoutDrift(first, couponId, accepted);
    } finally {
      for (const p of processes) await p.container.worker.stop();
    }
  });
});
