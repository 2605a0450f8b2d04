import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { DomainError } from '../domain/errors.js';
import { USER_ID_PATTERN } from '../domain/issue-request.js';
import type { IdentityConfig } from '../infra/config.js';

/** What a verified token says about its bearer. */
export interface VerifiedToken {
  readonly userId: string;
  readonly operator: boolean;
}

/** A token that does not prove who sent it; `reason` is for the log, never for the client. */
export class InvalidTokenError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'InvalidTokenError';
  }
}

export interface TokenVerifier {
  /** Resolves with the bearer, or rejects with InvalidTokenError (or DEPENDENCY_UNAVAILABLE). */
  verify(token: string): Promise<VerifiedToken>;
}

/**
 * JWKS tokens verified recently, so a client polling its status is not verified
 * again each time. HS256 tokens are not cached: verifying one on node:crypto
 * costs about what the cache saves, and on the accept path, where every token
 * is new, the cache's churn doubled the cost per token (200,000 distinct
 * tokens, 100 at a time, CPU time including GC: 9.7 µs with it, 4.7 µs without).
 */
const CACHE_ENTRIES = 10_000;

/**
 * Verifies a secret's HS256 tokens on node:crypto and a JWKS's with jose. The
 * algorithms are pinned by the kind of key (HS256 for a secret; RS256 and
 * ES256 for a JWKS), so neither `none` nor a token signed with
 * another algorithm than the key's is ever accepted; `exp` and `sub` are required.
 */
export function createTokenVerifier(config: IdentityConfig): TokenVerifier {
  // A secret verifies on node:crypto (verifyHs256 below); a JWKS through jose, which fetches,
  // caches and refreshes its keys.
  const jwks: JWTVerifyGetKey | undefined =
    config.key.kind === 'jwks' ? createRemoteJWKSet(new URL(config.key.url)) : undefined;
  const options: JWTVerifyOptions = {
    algorithms: config.key.kind === 'secret' ? ['HS256'] : ['RS256', 'ES256'],
    requiredClaims: ['exp', 'sub'],
    clockTolerance: config.clockToleranceSec,
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
  };
  const toleranceMs = config.clockToleranceSec * 1000;
  const hs256 = config.key.kind === 'secret' ? verifyHs256(config.key.secret, config) : undefined;
  // Insertion-ordered Map as an LRU: a hit is moved to the end, the oldest entry leaves first.
  const cache = hs256
    ? undefined
    : new Map<string, VerifiedToken & { readonly expiresAtMs: number }>();

  return {
    async verify(token) {
      const hit = cache?.get(token);
      if (cache && hit) {
        cache.delete(token);
        if (Date.now() <= hit.expiresAtMs + toleranceMs) {
          cache.set(token, hit);
          return hit;
        }
      }
      let payload: JWTPayload;
      try {
        // jose's two overloads (a key, a key lookup) take the same options.
        if (hs256) payload = hs256(token);
        else ({ payload } = await jwtVerify(token, jwks as JWTVerifyGetKey, options));
      } catch (err) {
        throw classify(err);
      }
      const sub = payload.sub;
      // A number would pass the pattern as its digits: only a string is a user id.
      if (typeof sub !== 'string' || !USER_ID_PATTERN.test(sub)) {
        throw new InvalidTokenError('sub breaks the user id rules');
      }
      const verified = {
        userId: sub,
        operator: holdsRole(payload[config.rolesClaim], config.operatorRole),
        expiresAtMs: (payload.exp as number) * 1000,
      };
      if (cache) {
        if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
        cache.set(token, verified);
      }
      return verified;
    },
  };
}

function holdsRole(claim: unknown, role: string): boolean {
  return claim === role || (Array.isArray(claim) && claim.includes(role));
}

/** jose's error codes, as the log's reason; keys that cannot be fetched are an outage, not a bad token. */
function classify(err: unknown): Error {
  const unreachable =
    err instanceof TypeError || // fetch failed: refused, reset, no such host
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    // What jose raises for a JWKS answer other than 200.
    (err instanceof errors.JOSEError && err.code === 'ERR_JOSE_GENERIC');
  if (unreachable) {
    return new DomainError('DEPENDENCY_UNAVAILABLE', 'the token signing keys could not be fetched');
  }
  if (!(err instanceof errors.JOSEError)) {
    return new InvalidTokenError(err instanceof Error ? err.message : String(err));
  }
  const claim = err instanceof errors.JWTClaimValidationFailed ? ` (${err.claim})` : '';
  return new InvalidTokenError(`${err.code}${claim}`);
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * HS256 verification on node:crypto's HMAC, for the accept path, where every
 * request carries a token seen once: jose verifies through WebCrypto, about
 * 50 µs of CPU per token against about 13 µs here (20,000 tokens, 100 at a
 * time), and `npm run bench`'s guarded accept measured auth alone at 0.68 of
 * the unguarded throughput with jose. It makes jose's checks for this one
 * algorithm, with jose's error codes as reasons: three base64url parts, a JSON
 * object header with `alg` exactly HS256 and no `crit` or `b64`, the signature
 * compared in constant time, a JSON object payload, `exp` and `sub` present,
 * `iat`, `nbf`, `exp` numbers, `nbf` and `exp` against the clock with the
 * tolerance, `iss` and `aud` when configured. Tokens from a JWKS stay on jose.
 */
function verifyHs256(secret: string, config: IdentityConfig): (token: string) => JWTPayload {
  const key = Buffer.from(secret, 'utf8');
  const tolerance = config.clockToleranceSec;
  return (token) => {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) {
      throw new InvalidTokenError('ERR_JWS_INVALID');
    }
    const [head, body, signature] = parts as [string, string, string];
    const header = parseObject(head, 'ERR_JWS_INVALID');
    if (header.alg !== 'HS256') throw new InvalidTokenError('ERR_JOSE_ALG_NOT_ALLOWED');
    if ('crit' in header || 'b64' in header) throw new InvalidTokenError('ERR_JOSE_NOT_SUPPORTED');
    const expected = createHmac('sha256', key).update(`${head}.${body}`).digest();
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new InvalidTokenError('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    }
    const payload = parseObject(body, 'ERR_JWT_INVALID') as JWTPayload;
    for (const claim of ['exp', 'sub'] as const) {
      if (!(claim in payload)) throw claimFailed(claim);
    }
    for (const claim of ['iat', 'nbf', 'exp'] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== 'number') {
        throw new InvalidTokenError('ERR_JWT_INVALID');
      }
    }
    const now = Math.floor(Date.now() / 1000);
    if (payload.nbf !== undefined && payload.nbf > now + tolerance) throw claimFailed('nbf');
    if ((payload.exp as number) <= now - tolerance) throw new InvalidTokenError('ERR_JWT_EXPIRED');
    if (config.issuer !== undefined && payload.iss !== config.issuer) throw claimFailed('iss');
    if (config.audience !== undefined) {
      const aud = payload.aud;
      const ok = Array.isArray(aud) ? aud.includes(config.audience) : aud === config.audience;
      if (!ok) throw claimFailed('aud');
    }
    return payload;
  };
}

function parseObject(part: string, code: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidTokenError(code);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidTokenError(code);
  }
  return value as Record<string, unknown>;
}

function claimFailed(claim: string): InvalidTokenError {
  return new InvalidTokenError(`ERR_JWT_CLAIM_VALIDATION_FAILED (${claim})`);
}
