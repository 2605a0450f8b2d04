import { SignJWT, type JWTPayload } from 'jose';

/** The HS256 secret the identity suites configure (JWT_SECRET). */
export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789';

/** Signs a user's token with JWT_SECRET (or `secret`), valid for an hour unless `claims` says otherwise. */
export function userToken(
  sub: string,
  claims: JWTPayload = {},
  secret: string = JWT_SECRET,
): Promise<string> {
  return new SignJWT({ sub, exp: Math.floor(Date.now() / 1000) + 3600, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(secret));
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
