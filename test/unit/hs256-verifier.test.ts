import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { jwtVerify } from 'jose';
import { createTokenVerifier } from '../../src/api/token-verifier.js';
import type { IdentityConfig } from '../../src/infra/config.js';

const SECRET = 'hs256-differential-secret-0123456789abcdef';
const ISSUER = 'https://issuer.example';
const AUDIENCE = 'coupons';
const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const sign = (input: string, secret = SECRET) =>
  createHmac('sha256', secret).update(input).digest('base64url');

/** A token from parts, signed (or not) as the case says. */
function token(header: unknown, payload: unknown, signature?: string): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signature ?? sign(input)}`;
}

const now = () => Math.floor(Date.now() / 1000);
const good = () => ({ sub: 'user-1', exp: now() + 600, iss: ISSUER, aud: AUDIENCE });
const hs = { alg: 'HS256', typ: 'JWT' };

/** Every kind of token the verifier must judge exactly as jose does. */
const cases: [string, () => string][] = [
  ['a good token', () => token(hs, good())],
  ['aud as an array holding the audience', () => token(hs, { ...good(), aud: ['x', AUDIENCE] })],
  ['nbf in the past, iat a number', () => token(hs, { ...good(), nbf: now() - 10, iat: now() })],
  ['no typ header', () => token({ alg: 'HS256' }, good())],
  ['expired', () => token(hs, { ...good(), exp: now() - 60 })],
  ['exp exactly now (expired)', () => token(hs, { ...good(), exp: now() })],
  ['no exp', () => token(hs, { sub: 'u', iss: ISSUER, aud: AUDIENCE })],
  ['exp a string', () => token(hs, { ...good(), exp: String(now() + 600) })],
  ['no sub', () => token(hs, { exp: now() + 600, iss: ISSUER, aud: AUDIENCE })],
  ['nbf in the future', () => token(hs, { ...good(), nbf: now() + 600 })],
  ['nbf a string', () => token(hs, { ...good(), nbf: 'soon' })],
  ['iat a string', () => token(hs, { ...good(), iat: 'then' })],
  ['wrong issuer', () => token(hs, { ...good(), iss: 'https://other.example' })],
  ['no issuer', () => token(hs, { sub: 'u', exp: now() + 600, aud: AUDIENCE })],
  ['wrong audience', () => token(hs, { ...good(), aud: 'other' })],
  ['audience array without ours', () => token(hs, { ...good(), aud: ['a', 'b'] })],
  ['wrong secret', () => token(hs, good(), sign(`${b64(hs)}.${b64(good())}`, `${SECRET}x`))],
  ['alg none, no signature', () => `${b64({ alg: 'none' })}.${b64(good())}.`],
  ['alg none, signed anyway', () => token({ alg: 'none' }, good())],
  ['alg HS512 label', () => token({ alg: 'HS512' }, good())],
  ['alg lower case', () => token({ alg: 'hs256' }, good())],
  ['crit header', () => token({ alg: 'HS256', crit: ['exp'] }, good())],
  ['b64 false header', () => token({ alg: 'HS256', b64: false, crit: ['b64'] }, good())],
  ['payload an array', () => token(hs, [1, 2])],
  ['payload not JSON', () => token(hs, 'not json')],
  [
    'header not JSON',
    () => `${b64('nope')}.${b64(good())}.${sign(`${b64('nope')}.${b64(good())}`)}`,
  ],
  ['two parts', () => `${b64(hs)}.${b64(good())}`],
  ['four parts', () => `${token(hs, good())}.x`],
  ['a signature cut short', () => token(hs, good()).slice(0, -3)],
  ['padding in a part', () => token(hs, good()).replace(/\.([^.]*)$/, '.$1==')],
  ['a space in a part', () => token(hs, good()).replace('.', ' .')],
];

const config: IdentityConfig = {
  key: { kind: 'secret', secret: SECRET },
  issuer: ISSUER,
  audience: AUDIENCE,
  clockToleranceSec: 0,
  rolesClaim: 'roles',
  operatorRole: 'operator',
};

async function byJose(jwt: string): Promise<boolean> {
  try {
    await jwtVerify(jwt, new TextEncoder().encode(SECRET), {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'sub'],
      issuer: ISSUER,
      audience: AUDIENCE,
      clockTolerance: 0,
    });
    return true;
  } catch {
    return false;
  }
}

async function byService(jwt: string): Promise<boolean> {
  // A fresh verifier per token: its cache must not decide.
  return createTokenVerifier(config)
    .verify(jwt)
    .then(
      () => true,
      () => false,
    );
}

describe('HS256 tokens verified on node:crypto', () => {
  for (const [name, make] of cases) {
    it(`when the token is ${name}, then it is accepted exactly when jose accepts it`, async () => {
      const jwt = make();
      expect(await byService(jwt)).to.equal(await byJose(jwt));
    });
  }

  it('when the table is run, then it holds tokens jose accepts and tokens jose refuses', async () => {
    const verdicts = await Promise.all(cases.map(([, make]) => byJose(make())));
    expect(verdicts.filter(Boolean).length).to.equal(4);
    expect(verdicts.filter((v) => !v).length).to.equal(cases.length - 4);
  });
});
