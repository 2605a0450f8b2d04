import { expect } from 'chai';
import sinon from 'sinon';
import type { Coupon } from '../../src/domain/coupon.js';
import { DomainError } from '../../src/domain/errors.js';
import type {
  CouponChange,
  CouponRepository,
  CouponUpdateHooks,
  EventControl,
  EventScheduler,
} from '../../src/domain/ports.js';
import { UpdateCoupon } from '../../src/domain/use-cases/update-coupon.js';

const NOW = new Date('2030-01-01T00:00:00Z');

const stored: Coupon = {
  id: 7,
  name: 'Sale',
  totalQuantity: 10,
  issuedCount: 2,
  startsAt: null,
  endsAt: null,
  closedAt: null,
  pausedAt: null,
  retiredAt: null,
  createdAt: NOW,
};

/** A repository whose update runs the hooks as the real one does, around a row that may commit. */
function setup(options: { commitFails?: boolean } = {}) {
  let row = stored;
  const coupons = {
    update: sinon
      .stub()
      .callsFake(async (_id: number, change: CouponChange, hooks: CouponUpdateHooks) => {
        hooks.check(row);
        const after = { ...row, ...change } as Coupon;
        await hooks.confirm(row, after);
        if (options.commitFails) throw new Error('connection lost during COMMIT');
        row = after;
        return after;
      }),
    findById: sinon.stub().callsFake(async () => row),
  };
  const control = {
    resize: sinon.stub().resolves({ kind: 'resized', stock: 0 }),
    setWindow: sinon.stub().resolves(true),
  };
  const scheduler = { schedule: sinon.stub().resolves() };
  const logger = { info: sinon.stub(), warn: sinon.stub(), error: sinon.stub() };
  const useCase = new UpdateCoupon({
    coupons: coupons as unknown as CouponRepository,
    control: control as unknown as EventControl,
    scheduler: scheduler as EventScheduler,
    logger,
    now: () => NOW,
  });
  return { coupons, control, scheduler, logger, useCase };
}

describe('UpdateCoupon', () => {
  it('when the gate took a new total and the window write then fails, then the gate gets PostgreSQL total back and the error stands', async () => {
    const { control, scheduler, useCase } = setup();
    control.setWindow.rejects(new Error('Redis went away'));

    const error = await useCase
      .execute(7, { totalQuantity: 20, endsAt: new Date('2030-02-01T00:00:00Z') })
      .catch((e: unknown) => e);

    expect((error as Error).message).to.equal('Redis went away');
    expect(control.resize.args.map((a) => a[1])).to.deep.equal([20, 10]);
    expect(scheduler.schedule.called).to.equal(false);
  });

  it('when the commit fails after the gate took the new total, then the gate is realigned with what PostgreSQL holds', async () => {
    const { control, useCase } = setup({ commitFails: true });

    await useCase.execute(7, { totalQuantity: 4 }).catch(() => undefined);

    expect(control.resize.args.map((a) => a[1])).to.deep.equal([4, 10]);
  });

  it('when the gate refuses a shrink, then QUANTITY_BELOW_ISSUED names the minimum and nothing is scheduled', async () => {
    const { control, scheduler, useCase } = setup();
    control.resize.resolves({ kind: 'refused', minimum: 3 });

    const error = (await useCase
      .execute(7, { totalQuantity: 2 })
      .catch((e: unknown) => e)) as DomainError;

    expect(error.code).to.equal('QUANTITY_BELOW_ISSUED');
    expect(error.message).to.contain('below 3');
    expect(error.details?.errors).to.deep.equal([
      { path: 'totalQuantity', message: 'must be at least 3' },
    ]);
    expect(control.resize.callCount).to.equal(1);
    expect(scheduler.schedule.called).to.equal(false);
  });

  it('when only the name changes, then the gate is not touched and the jobs are rescheduled', async () => {
    const { control, scheduler, useCase } = setup();

    const coupon = await useCase.execute(7, { name: 'Renamed' });

    expect(coupon.name).to.equal('Renamed');
    expect(control.resize.called || control.setWindow.called).to.equal(false);
    expect(scheduler.schedule.calledOnceWith(coupon)).to.equal(true);
  });
});
