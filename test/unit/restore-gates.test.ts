import { expect } from 'chai';
import sinon from 'sinon';
import type { CouponRepository, GateMaintenance } from '../../src/domain/ports.js';
import type { CouponGateLoader } from '../../src/domain/use-cases/coupon-gate-loader.js';
import { RestoreGates } from '../../src/domain/use-cases/restore-gates.js';
import type { SyncCoupon } from '../../src/domain/use-cases/sync-coupon.js';

function setup() {
  const maintenance = {
    markPresent: sinon.stub().resolves(true),
    serverRunId: sinon.stub().resolves('run-1'),
  };
  const coupons = { liveCouponIds: sinon.stub().resolves([3, 5]) };
  const loader = { ensureLoaded: sinon.stub().resolves() };
  const sync = { execute: sinon.stub().resolves({}) };
  const logger = { info: sinon.spy(), warn: sinon.spy(), error: sinon.spy() };
  const restore = new RestoreGates({
    coupons: coupons as unknown as CouponRepository,
    maintenance: maintenance as unknown as GateMaintenance,
    loader: loader as unknown as CouponGateLoader,
    sync: sync as unknown as SyncCoupon,
    logger,
  });
  return { maintenance, loader, sync, logger, restore };
}

describe('watching the Redis behind the gates', () => {
  it('when the marker is missing at first start, then live gates are loaded without an alarm', async () => {
    const { maintenance, loader, logger, restore } = setup();
    maintenance.markPresent.resolves(false);

    expect(await restore.execute()).to.equal(2);
    expect(loader.ensureLoaded.args.map((a) => a[0])).to.deep.equal([3, 5]);
    expect(logger.error.called).to.equal(false);
  });

  it('when the marker disappears after it was seen, then the loss is logged as an error and gates are rebuilt', async () => {
    const { maintenance, loader, logger, restore } = setup();
    await restore.execute();
    maintenance.markPresent.resolves(false);

    await restore.execute();

    expect(logger.error.calledWithMatch('Redis lost its data')).to.equal(true);
    expect(loader.ensureLoaded.callCount).to.equal(2);
  });

  it('when Redis restarted with its data, then every live coupon is synced from PostgreSQL', async () => {
    const { maintenance, sync, logger, restore } = setup();
    await restore.execute();
    maintenance.serverRunId.resolves('run-2');

    expect(await restore.execute()).to.equal(2);
    expect(sync.execute.args.map((a) => a[0])).to.deep.equal([3, 5]);
    expect(logger.warn.calledWithMatch('Redis restarted')).to.equal(true);
  });

  it('when nothing changed, then nothing is loaded or synced', async () => {
    const { loader, sync, restore } = setup();
    await restore.execute();

    expect(await restore.execute()).to.equal(0);
    expect(loader.ensureLoaded.called).to.equal(false);
    expect(sync.execute.called).to.equal(false);
  });
});
