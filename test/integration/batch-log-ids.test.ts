import { expect } from 'chai';
import { BatchNotWrittenError, type IssueLedger } from '../../src/domain/ports.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';

/** The real ledger, except that the next commit can be made to roll back for certain. */
function rollingBack(real: IssueLedger, failures: { next: number }): IssueLedger {
  return {
    commit: (batch) => {
      if (failures.next > 0) {
        failures.next -= 1;
        return Promise.reject(new BatchNotWrittenError(new Error('rolled back on purpose')));
      }
      return real.commit(batch);
    },
    settle: (batch) => real.settle(batch),
    findRequest: (id) => real.findRequest(id),
  };
}

describe("the worker's log lines", () => {
  const failures = { next: 0 };
  let h: Harness;

  before(async () => {
    h = await startHarness({ overrides: { ledger: (real) => rollingBack(real, failures) } });
  });
  after(async () => {
    await h.cleanup();
  });

  const fenceRows = async (couponId: number) =>
    (
      await h.container.pool.query<{ batch_id: string; state: string; size: number }>(
        'SELECT batch_id, state, size FROM worker_batches WHERE coupon_id = $1',
        [couponId],
      )
    ).rows;

  it('when batches commit, then each batch line carries the id PostgreSQL recorded the batch under', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Lines', totalQuantity: 10 });
    for (const user of ['u1', 'u2', 'u3']) {
      expect((await requestIssue(h.baseUrl, couponId, user)).status).to.equal(202);
    }

    await drainAll(h.container);

    const lines = h.logged.filter((l) => l.message === 'batch' && l.meta.couponId === couponId);
    expect(lines).to.have.length.at.least(1);
    const rows = await fenceRows(couponId);
    expect(
      lines.map((l) => ({ batch_id: l.meta.batchId, state: 'COMMITTED', size: l.meta.size })),
    ).to.have.deep.members(rows);
    expect(rows.reduce((sum, r) => sum + r.size, 0)).to.equal(3);
  });

  it('when a batch is rolled back, then the back-off line names that batch, and the batch that commits after it is another', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Rolled back', totalQuantity: 10 });
    for (const user of ['v1', 'v2']) {
      expect((await requestIssue(h.baseUrl, couponId, user)).status).to.equal(202);
    }
    failures.next = 1;

    // The worker's own loop (its failures are logged there): ticks until the retry commits.
    const deadline = Date.now() + 20_000;
    const committed = () =>
      h.logged.find((l) => l.message === 'batch' && l.meta.couponId === couponId);
    while (!committed() && Date.now() < deadline) await h.container.worker.tick();

    const backingOff = h.logged.find(
      (l) => l.message === 'drain backing off' && l.meta.couponId === couponId,
    );
    expect(backingOff?.meta).to.include({ settlement: 'compensated', size: 2 });
    const failedId = backingOff?.meta.batchId;
    expect(failedId).to.be.a('string').and.not.equal('');
    const retried = committed();
    expect(retried?.meta.batchId).to.be.a('string').and.not.equal(failedId);
    // PostgreSQL knows only the batch that committed; the rolled-back one left nothing.
    expect(await fenceRows(couponId)).to.deep.equal([
      { batch_id: retried?.meta.batchId, state: 'COMMITTED', size: 2 },
    ]);
  });
});
