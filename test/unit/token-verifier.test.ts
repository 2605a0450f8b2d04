import { expect } from 'chai';
import { createTokenVerifier, InvalidTokenError } from '../../src/api/token-verifier.js';
import type { IdentityConfig } from '../../src/infra/config.js';
import { JWT_SECRET, userToken } from '../support/tokens.js';

const settings = (extra: Partial<IdentityConfig> = {}): IdentityConfig => ({
  key: { kind: 'secret', secret: JWT_SECRET },
  clockToleranceSec: 0,
  rolesClaim: 'roles',
  operatorRole: 'operator',
  ...extra,
});

async function refusal(promise: Promise<unknown>): Promise<InvalidTokenError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidTokenError);
    return err as InvalidTokenError;
  }
  throw new Error('the token was accepted');
}

describe('token verifier', () => {
  it('when a token was verified and then its exp passes, then the remembered verification no longer counts', async () => {
    const verifier = createTokenVerifier(settings());
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await userToken('brief', { exp });
    expect(await verifier.verify(token)).to.include({ userId: 'brief', operator: false });
    expect(await verifier.verify(token)).to.include({ userId: 'brief' });
    // Bounded wait for the clock to pass exp (no assertion on how long it took).
    while (Date.now() <= exp * 1000 + 50) await new Promise((r) => setTimeout(r, 100));
    expect((await refusal(verifier.verify(token))).reason).to.match(/EXPIRED/);
  });

  it('when the roles claim holds the operator role (as a string or in an array), then the token is an operator', async () => {
    const verifier = createTokenVerifier(
      settings({ rolesClaim: 'https://example.com/roles', operatorRole: 'coupon-admin' }),
    );
    const claim = 'https://example.com/roles';
    const as = async (roles: unknown) =>
      (await verifier.verify(await userToken('olga', { [claim]: roles }))).operator;
    expect(await as('coupon-admin')).to.equal(true);
    expect(await as(['viewer', 'coupon-admin'])).to.equal(true);
    expect(await as(['viewer'])).to.equal(false);
    expect(await as('coupon-admin-not')).to.equal(false);
    expect(await as({ 'coupon-admin': true })).to.equal(false);
    // The default claim name does not count under another setting.
    expect(
      (await verifier.verify(await userToken('olga', { roles: ['coupon-admin'] }))).operator,
    ).to.equal(false);
  });

  it('when a token is refused, then it is not remembered: the same token is refused again', async () => {
    const verifier = createTokenVerifier(settings({ audience: 'coupons' }));
    const token = await userToken('alice', { aud: 'elsewhere' });
    expect((await refusal(verifier.verify(token))).reason).to.match(/aud/);
    expect((await refusal(verifier.verify(token))).reason).to.match(/aud/);
  });
});
