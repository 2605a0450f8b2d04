import { expect } from 'chai';
import type { DecidedBatch } from '../../src/domain/ports.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState, expectNoStrayExpiry } from '../support/state.js';

const SHORT_LEASE_MS = 100;

describe('recovery of batches whose worker stopped', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  async function setUp(
    stock: number,
    users: string[],
  ): Promise<{ couponId: number; ids: string[] }> {
    const couponId = await createCoupon(h.baseUrl, { name: 'Recovery', totalQuantity: stock });
    const ids: string[] = [];
    for (const user of users) {
      const res = await requestIssue(h.baseUrl, couponId, user);
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      ids.push(res.body.requestId);
    }
    return { couponId, ids };
  }

  const pastLease = () => new Promise((resolve) => setTimeout(resolve, SHORT_LEASE_MS + 50));

  async function batchStates(): Promise<Record<string, string>> {
    const { rows } = await h.container.pool.query<{ batch_id: string; state: string }>(
      'SELECT batch_id, state FROM worker_batches',
    );
    return Object.fromEntries(rows.map((r) => [r.batch_id, r.state]));
  }

  async function expectSettledAndAgreeing(couponId: number, ids: string[], issued: string[]) {
    const finals = await Promise.all(
      ids.map((id) => http(h.baseUrl, 'GET', `/issue-requests/${id}`)),
    );
    for (const f of finals) expect(f.body.status).to.be.oneOf(['ISSUED', 'REJECTED']);
    const state = await couponState(h.container, couponId);
    expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(issued);
    expect(state.requestRows).to.have.length(ids.length);
    expect(state.redisStock).to.equal(state.total - issued.length);
    expect(state.redisIssued).to.deep.equal([...issued].sort());
    expect([state.queued, state.inflight, state.pendingRecords, state.leasedBatches]).to.deep.equal(
      [0, 0, 0, 0],
    );
    await expectNoStrayExpiry(h.container);
  }

  it('when a worker died after taking a batch, then after the lease the batch is fenced off, re-queued in place and decided again', async () => {
    const { couponId, ids } = await setUp(3, ['k1', 'k2', 'k3']);
    const crashed = (await h.container.queue.take(
      couponId,
      10,
      SHORT_LEASE_MS,
      'crashed-batch',
    )) as DecidedBatch;
    await pastLease();

    const reports = await h.container.recover.execute([couponId], 30_000);

    expect(reports.map((r) => [r.batchId, r.settlement])).to.deep.equal([
      ['crashed-batch', 'compensated'],
    ]);
    expect(await batchStates()).to.deep.equal({ 'crashed-batch': 'ABANDONED' });
    const requeued = await couponState(h.container, couponId);
    expect([requeued.queued, requeued.redisStock, requeued.issuedRows.length]).to.deep.equal([
      3, 3, 0,
    ]);
    await expectNoStrayExpiry(h.container);
    // A late commit of the crashed worker is refused by the fence.
    expect((await h.container.ledger.commit(crashed)).kind).to.equal('abandoned');

    await drainAll(h.container);
    await expectSettledAndAgreeing(couponId, ids, ['k1', 'k2', 'k3']);
  });

  it('when a worker died after its commit but before telling Redis, then recovery rolls the batch forward and nothing is decided twice', async () => {
    const { couponId, ids } = await setUp(5, ['m1', 'm2']);
    const batch = (await h.container.queue.take(
      couponId,
      10,
      SHORT_LEASE_MS,
      'committed-batch',
    )) as DecidedBatch;
    await h.container.ledger.commit(batch);
    await pastLease();

    const reports = await h.container.recover.execute([couponId], 30_000);

    expect(reports.map((r) => [r.batchId, r.settlement])).to.deep.equal([
      ['committed-batch', 'committed'],
    ]);
    expect(await batchStates()).to.deep.equal({ 'committed-batch': 'COMMITTED' });
    await expectSettledAndAgreeing(couponId, ids, ['m1', 'm2']);
  });

  it('when two workers recover the same expired batches at once, then each batch is settled once', async () => {
    const { couponId, ids } = await setUp(4, ['r1', 'r2', 'r3', 'r4']);
    await h.container.queue.take(couponId, 2, SHORT_LEASE_MS, 'expired-1');
    const second = (await h.container.queue.take(
      couponId,
      2,
      SHORT_LEASE_MS,
      'expired-2',
    )) as DecidedBatch;
    await h.container.ledger.commit(second);
    await pastLease();
    const other = await startHarness({ databaseUrl: h.databaseUrl, prefix: h.prefix });
    try {
      await Promise.all([
        h.container.recover.execute([couponId], SHORT_LEASE_MS),
        other.container.recover.execute([couponId], SHORT_LEASE_MS),
      ]);
      await pastLease();
      await Promise.all([
        h.container.recover.execute([couponId], 30_000),
        other.container.recover.execute([couponId], 30_000),
      ]);
    } finally {
      await other.cleanup();
    }

    expect(await batchStates()).to.deep.equal({
      'expired-1': 'ABANDONED',
      'expired-2': 'COMMITTED',
    });
    await drainAll(h.container);
    // expired-2 (r3, r4) was committed before the crash; r1 and r2 came back and were issued after.
    await expectSettledAndAgreeing(couponId, ids, ['r3', 'r4', 'r1', 'r2']);
  });

  it('when the worker runs on its schedule, then it recovers expired batches without being asked', async () => {
    const { couponId, ids } = await setUp(2, ['s1', 's2']);
    await h.container.queue.take(couponId, 10, SHORT_LEASE_MS, 'orphan');
    await pastLease();

    h.container.worker.start();
    try {
      const deadline = Date.now() + 10_000;
      while (
        (await couponState(h.container, couponId)).issuedRows.length < 2 &&
        Date.now() < deadline
      ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await h.container.worker.stop();
    }

    expect(
      h.logged.some(
        (l) => l.message === 'recovered an expired batch' && l.meta.batchId === 'orphan',
      ),
    ).to.equal(true);
    await expectSettledAndAgreeing(couponId, ids, ['s1', 's2']);
  });
});
