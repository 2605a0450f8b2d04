import { expect } from 'chai';
import sinon from 'sinon';
import type { CouponGateState } from '../../src/domain/coupon.js';
import { DomainError } from '../../src/domain/errors.js';
import type {
  CouponRepository,
  GateMaintenance,
  GateSnapshot,
  IssueGate,
} from '../../src/domain/ports.js';
import type { RecoverExpiredBatches } from '../../src/domain/use-cases/recover-expired-batches.js';
import { SyncCoupon } from '../../src/domain/use-cases/sync-coupon.js';

const LEASE_MS = 1_000;

const state: CouponGateState = {
  couponId: 7,
  totalQuantity: 5,
  remaining: 4,
  paused: false,
  issuedUserIds: ['u1'],
  startsAt: null,
  endsAt: null,
  closed: false,
};

const snapshot: GateSnapshot = {
  totalQuantity: 5,
  stock: 4,
  issuedUserIds: ['u1'],
  queued: 0,
  waitingRecords: 0,
  inflightBatches: 0,
  expiredLeases: 0,
  inflightIssuedUserIds: [],
  paused: true,
  closed: false,
};

function setup() {
  const maintenance = {
    inspect: sinon.stub().resolves(snapshot),
    lockSync: sinon.stub().resolves('token-1'),
    unlockSync: sinon.stub().resolves(),
    replace: sinon.stub().resolves('replaced'),
  };
  const coupons = { gateState: sinon.stub().resolves(state) };
  const gate = { load: sinon.stub().resolves() };
  // Each reading of the clock is 5 s later: deadlines pass after a few tries, without waiting.
  let clock = 0;
  const sync = new SyncCoupon({
    coupons: coupons as unknown as CouponRepository,
    gate: gate as unknown as IssueGate,
    maintenance: maintenance as unknown as GateMaintenance,
    recover: { execute: sinon.stub().resolves([]) } as unknown as RecoverExpiredBatches,
    leaseMs: LEASE_MS,
    nowMs: () => (clock += 5_000),
  });
  return { maintenance, coupons, gate, sync };
}

describe('syncing a coupon under its lock', () => {
  it('when the lock is free, then the snapshot is swapped in under the lock token, and the lock, held longer than the sync may take, is released', async () => {
    const { maintenance, sync } = setup();

    const report = await sync.execute(7);

    expect(report.after).to.deep.equal({ stock: 4, issuedUsers: 1 });
    sinon.assert.calledOnceWithExactly(maintenance.replace, state, 'token-1');
    const lockMs = maintenance.lockSync.firstCall.args[1] as number;
    expect(lockMs).to.be.above(LEASE_MS + 5_000);
    sinon.assert.calledOnceWithExactly(maintenance.unlockSync, 7, 'token-1');
  });

  it('when another sync holds the lock, then this one waits and goes on once it is free', async () => {
    const { maintenance, sync } = setup();
    maintenance.lockSync.onFirstCall().resolves(null).onSecondCall().resolves(null);

    await sync.execute(7);

    expect(maintenance.lockSync.callCount).to.equal(3);
    sinon.assert.calledOnce(maintenance.replace);
  });

  it('when the lock stays taken for longer than any sync holds it, then SYNC_IN_PROGRESS and nothing is read or swapped', async () => {
    const { maintenance, coupons, sync } = setup();
    maintenance.lockSync.resolves(null);

    const error = await sync.execute(7).catch((err: unknown) => err);

    expect((error as DomainError).code).to.equal('SYNC_IN_PROGRESS');
    sinon.assert.notCalled(coupons.gateState);
    sinon.assert.notCalled(maintenance.replace);
    sinon.assert.notCalled(maintenance.unlockSync);
  });

  it('when the swap finds the lock no longer held, then SYNC_LOCK_LOST, nothing is retried and the token is released', async () => {
    const { maintenance, sync } = setup();
    maintenance.replace.resolves('lockLost');

    const error = await sync.execute(7).catch((err: unknown) => err);

    expect(error).to.be.instanceOf(DomainError);
    expect((error as DomainError).code).to.equal('SYNC_LOCK_LOST');
    sinon.assert.calledOnce(maintenance.replace);
    sinon.assert.calledOnceWithExactly(maintenance.unlockSync, 7, 'token-1');
  });

  it('when Redis holds no gate, then it is loaded under the lock and the lock is released', async () => {
    const { maintenance, gate, sync } = setup();
    maintenance.inspect.resolves(null);

    await sync.execute(7);

    sinon.assert.calledOnceWithExactly(gate.load, state);
    sinon.assert.callOrder(maintenance.lockSync, gate.load, maintenance.unlockSync);
    sinon.assert.notCalled(maintenance.replace);
  });
});
