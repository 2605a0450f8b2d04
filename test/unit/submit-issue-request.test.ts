import { expect } from 'chai';
import sinon from 'sinon';
import { DomainError } from '../../src/domain/errors.js';
import { parseRequestId } from '../../src/domain/issue-request.js';
import type { CouponRepository, IssueGate } from '../../src/domain/ports.js';
import { CouponGateLoader } from '../../src/domain/use-cases/coupon-gate-loader.js';
import { SubmitIssueRequest } from '../../src/domain/use-cases/submit-issue-request.js';

function fakes(now = { ms: 1_000 }) {
  const gate = {
    accept: sinon.stub(),
    load: sinon.stub().resolves(),
    close: sinon.stub().resolves(),
    pending: sinon.stub(),
  } satisfies IssueGate;
  const coupons = {
    create: sinon.stub(),
    // An open event: the loader reads the row first, the gate state only for a live event.
    findById: sinon.stub().resolves({
      id: 3,
      name: 'Event',
      totalQuantity: 10,
      issuedCount: 0,
      startsAt: null,
      endsAt: null,
      closedAt: null,
      pausedAt: null,
      retiredAt: null,
      createdAt: new Date(0),
    }),
    close: sinon.stub(),
    gateState: sinon.stub(),
    liveCouponIds: sinon.stub(),
    list: sinon.stub(),
    update: sinon.stub(),
    setPaused: sinon.stub(),
    startNow: sinon.stub(),
    requestFigures: sinon.stub(),
    closeAtEnd: sinon.stub(),
    markRetired: sinon.stub(),
    unretiredCoupons: sinon.stub(),
  } satisfies CouponRepository;
  const loader = new CouponGateLoader({ coupons, gate, nowMs: () => now.ms });
  const useCase = new SubmitIssueRequest({
    gate,
    loader,
    ids: { nonce: () => 'NNNNNNNNNN', batchId: () => 'b' },
  });
  return { gate, coupons, useCase, now };
}

const state = {
  couponId: 3,
  totalQuantity: 10,
  remaining: 10,
  startsAt: null,
  endsAt: null,
  closed: false,
  paused: false,
  issuedUserIds: [],
};

describe('submitting an issue request', () => {
  it('when the gate accepts, then the request id encodes the coupon, arrival and nonce', async () => {
    const { gate, useCase } = fakes();
    gate.accept.resolves({ kind: 'accepted', arrival: '1763692312345678', nonce: 'NNNNNNNNNN' });

    const submitted = await useCase.execute(3, 'alice');

    expect(submitted).to.include({
      couponId: 3,
      userId: 'alice',
      status: 'PENDING',
      created: true,
    });
    expect(parseRequestId(submitted.requestId)).to.deep.equal({
      couponId: 3,
      arrival: '1763692312345678',
      nonce: 'NNNNNNNNNN',
    });
  });

  it('when the user already waits, then the existing request id is returned, not a new one', async () => {
    const { gate, useCase } = fakes();
    gate.accept.resolves({ kind: 'alreadyPending', arrival: '500', nonce: 'OLDOLDOLD1' });

    const submitted = await useCase.execute(3, 'alice');

    expect(submitted.created).to.equal(false);
    expect(parseRequestId(submitted.requestId).nonce).to.equal('OLDOLDOLD1');
  });

  for (const code of ['ALREADY_ISSUED', 'SOLD_OUT', 'EVENT_NOT_OPEN', 'EVENT_PAUSED'] as const) {
    it(`when the gate rejects with ${code}, then a DomainError with that code is thrown`, async () => {
      const { gate, useCase } = fakes();
      gate.accept.resolves({ kind: 'rejected', code });

      const error = await useCase.execute(3, 'alice').catch((e: unknown) => e);

      expect(error).to.be.instanceOf(DomainError).with.property('code', code);
    });
  }

  it('when Redis does not know the coupon, then it is loaded from PostgreSQL once and the request retried', async () => {
    const { gate, coupons, useCase } = fakes();
    gate.accept.onFirstCall().resolves({ kind: 'notLoaded' });
    gate.accept.onSecondCall().resolves({ kind: 'accepted', arrival: '9', nonce: 'NNNNNNNNNN' });
    coupons.gateState.resolves(state);

    await useCase.execute(3, 'alice');

    expect(coupons.gateState.calledOnceWithExactly(3)).to.equal(true);
    expect(gate.load.calledOnceWithExactly(state)).to.equal(true);
    expect(gate.accept.callCount).to.equal(2);
  });

  it('when many requests find the coupon unloaded at once, then PostgreSQL is read once', async () => {
    const { gate, coupons, useCase } = fakes();
    gate.accept.callsFake(async () =>
      gate.load.called ? { kind: 'accepted', arrival: '9', nonce: 'N' } : { kind: 'notLoaded' },
    );
    coupons.gateState.callsFake(async () => {
      await new Promise((r) => setTimeout(r, 10));
      return state;
    });

    await Promise.all(Array.from({ length: 20 }, (_, i) => useCase.execute(3, `u${i}`)));

    expect(coupons.gateState.callCount).to.equal(1);
  });

  it('when the coupon does not exist, then COUPON_NOT_FOUND, and PostgreSQL is not asked again for a few seconds', async () => {
    const { gate, coupons, useCase, now } = fakes();
    gate.accept.resolves({ kind: 'notLoaded' });
    coupons.findById.resolves(null);

    const first = await useCase.execute(3, 'a').catch((e: unknown) => e);
    const second = await useCase.execute(3, 'b').catch((e: unknown) => e);
    now.ms += 10_000;
    await useCase.execute(3, 'c').catch(() => undefined);

    expect(first).to.be.instanceOf(DomainError).with.property('code', 'COUPON_NOT_FOUND');
    expect(second).to.be.instanceOf(DomainError).with.property('code', 'COUPON_NOT_FOUND');
    expect(coupons.findById.callCount).to.equal(2);
  });
});
