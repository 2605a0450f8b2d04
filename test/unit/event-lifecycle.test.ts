import { expect } from 'chai';
import sinon from 'sinon';
import { couponStatus, keyExpiryAt, type Coupon } from '../../src/domain/coupon.js';
import type { CouponRepository, EventKeys, IssueGate, Logger } from '../../src/domain/ports.js';
import { CloseEvent } from '../../src/domain/use-cases/close-event.js';
import { CouponGateLoader } from '../../src/domain/use-cases/coupon-gate-loader.js';
import { OpenEvent } from '../../src/domain/use-cases/open-event.js';
import { RetireEvent } from '../../src/domain/use-cases/retire-event.js';

const NOW = new Date('2030-01-01T12:00:00Z');
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs);
const DAY = 86_400_000;

function coupon(overrides: Partial<Coupon> = {}): Coupon {
  return {
    id: 7,
    name: 'Event',
    totalQuantity: 10,
    issuedCount: 0,
    startsAt: null,
    endsAt: null,
    closedAt: null,
    pausedAt: null,
    retiredAt: null,
    createdAt: at(-DAY),
    ...overrides,
  };
}

function fakes(found: Coupon | null) {
  const coupons = {
    findById: sinon.stub().resolves(found),
    closeAtEnd: sinon.stub().resolves(null),
    markRetired: sinon.stub().resolves(),
    gateState: sinon.stub().resolves(
      found && {
        couponId: found.id,
        totalQuantity: found.totalQuantity,
        remaining: found.totalQuantity - found.issuedCount,
        startsAt: found.startsAt,
        endsAt: found.endsAt,
        closed: found.closedAt !== null,
        issuedUserIds: [],
      },
    ),
  };
  const gate = { load: sinon.stub().resolves(), close: sinon.stub().resolves() };
  const events = {
    markOpened: sinon.stub().resolves(true),
    expireAt: sinon.stub().resolves(),
    retire: sinon.stub().resolves('retired'),
  };
  const logger = { info: sinon.spy(), warn: sinon.spy(), error: sinon.spy() };
  const deps = {
    coupons: coupons as unknown as CouponRepository,
    gate: gate as unknown as IssueGate,
    events: events as unknown as EventKeys,
    logger: logger as Logger,
    keyExpiryAfterEndMs: 7 * DAY,
    now: () => NOW,
  };
  return { coupons, gate, events, logger, deps };
}

const logged = (logger: { info: sinon.SinonSpy }, text: string) =>
  logger.info.getCalls().filter((c) => c.args[0] === text).length;

describe('the event lifecycle (domain)', () => {
  describe('status and expiry', () => {
    it('when an event was closed at or after its end, then it reads ENDED; closed before, CLOSED', () => {
      const endsAt = at(-1_000);
      expect(couponStatus(coupon({ endsAt, closedAt: endsAt }), NOW)).to.equal('ENDED');
      expect(couponStatus(coupon({ endsAt, closedAt: at(0) }), NOW)).to.equal('ENDED');
      expect(couponStatus(coupon({ endsAt: at(DAY), closedAt: at(-5) }), NOW)).to.equal('CLOSED');
      expect(couponStatus(coupon({ closedAt: at(-5) }), NOW)).to.equal('CLOSED');
    });

    it('when keys get an expiry, then it is after the end or the close, and none while an open event has no end', () => {
      const week = 7 * DAY;
      expect(keyExpiryAt(coupon(), week, NOW)).to.equal(null);
      expect(keyExpiryAt(coupon({ endsAt: at(DAY) }), week, NOW)).to.deep.equal(at(DAY + week));
      expect(keyExpiryAt(coupon({ endsAt: at(DAY), closedAt: at(-5) }), week, NOW)).to.deep.equal(
        at(-5 + week),
      );
      expect(keyExpiryAt(coupon({ closedAt: at(-5) }), week, NOW)).to.deep.equal(at(-5 + week));
      expect(keyExpiryAt(coupon({ issuedCount: 10 }), week, NOW)).to.deep.equal(at(week));
    });
  });

  describe('opening', () => {
    it('when the open job runs before startsAt (the window moved later), then nothing is loaded', async () => {
      const { gate, events, deps } = fakes(coupon({ startsAt: at(60_000) }));
      expect(await new OpenEvent(deps).execute(7)).to.equal('notDue');
      expect(gate.load.called).to.equal(false);
      expect(events.markOpened.called).to.equal(false);
    });

    it('when it runs twice at startsAt, then the gate is loaded each time and "event opened" logged once', async () => {
      const { gate, events, logger, deps } = fakes(coupon({ startsAt: at(-1), endsAt: at(DAY) }));
      const open = new OpenEvent(deps);
      expect(await open.execute(7)).to.equal('opened');
      events.markOpened.resolves(false);
      expect(await open.execute(7)).to.equal('alreadyOpen');
      expect(gate.load.callCount).to.equal(2);
      expect(events.expireAt.firstCall.args).to.deep.equal([7, at(DAY + 7 * DAY)]);
      expect(logged(logger, 'event opened')).to.equal(1);
    });

    it('when the event is closed or sold out, then the open job loads nothing', async () => {
      for (const over of [{ closedAt: at(-1) }, { issuedCount: 10 }]) {
        const { gate, deps } = fakes(coupon(over));
        expect(await new OpenEvent(deps).execute(7)).to.equal('notOpen');
        expect(gate.load.called).to.equal(false);
      }
    });
  });

  describe('closing at the end', () => {
    it('when the end moved later, then the old close job changes nothing', async () => {
      const { gate, logger, deps } = fakes(coupon({ endsAt: at(60_000) }));
      expect(await new CloseEvent(deps).execute(7)).to.equal('notDue');
      expect(gate.close.called).to.equal(false);
      expect(logged(logger, 'event closed')).to.equal(0);
    });

    it('when the end has come, then PostgreSQL is closed first, then the gate, and only that run logs', async () => {
      const ended = coupon({ endsAt: at(-1), closedAt: at(-1) });
      const { coupons, gate, logger, deps } = fakes(ended);
      coupons.closeAtEnd.onFirstCall().resolves(ended);
      const close = new CloseEvent(deps);
      expect(await close.execute(7)).to.equal('closed');
      expect(await close.execute(7)).to.equal('alreadyClosed');
      sinon.assert.callOrder(coupons.closeAtEnd, gate.close);
      expect(gate.close.callCount).to.equal(2);
      expect(logged(logger, 'event closed')).to.equal(1);
    });
  });

  describe('retiring', () => {
    it('when the event is live, then nothing is deleted', async () => {
      const { events, deps } = fakes(coupon());
      expect(await new RetireEvent(deps).execute(7)).to.equal('live');
      expect(events.retire.called).to.equal(false);
    });

    it('when something is still queued or in flight, then it is not noted retired', async () => {
      const { coupons, events, deps } = fakes(coupon({ closedAt: at(-1) }));
      events.retire.resolves('busy');
      expect(await new RetireEvent(deps).execute(7)).to.equal('busy');
      expect(coupons.markRetired.called).to.equal(false);
    });

    it('when the keys are gone, then PostgreSQL notes it after Redis', async () => {
      const { coupons, events, deps } = fakes(coupon({ issuedCount: 10 }));
      expect(await new RetireEvent(deps).execute(7)).to.equal('retired');
      sinon.assert.callOrder(events.retire, coupons.markRetired);
    });
  });

  describe('loading a gate on demand', () => {
    it('when the event is closed or sold out, then the gate is not loaded and the refusal is remembered briefly', async () => {
      for (const [over, code] of [
        [{ closedAt: at(-1) }, 'EVENT_NOT_OPEN'],
        [{ issuedCount: 10 }, 'SOLD_OUT'],
      ] as const) {
        const { coupons, gate, deps } = fakes(coupon(over));
        const loader = new CouponGateLoader({ ...deps, nowMs: () => NOW.getTime() });
        for (let i = 0; i < 2; i += 1) {
          const err = await loader.ensureLoaded(7).catch((e: unknown) => e);
          expect((err as { code?: string }).code).to.equal(code);
        }
        expect(gate.load.called).to.equal(false);
        // Refused from the row alone, once in the period: the issued users are not read.
        expect(coupons.findById.callCount).to.equal(1);
        expect(coupons.gateState.called).to.equal(false);
      }
    });
  });
});
