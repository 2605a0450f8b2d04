import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { sendProblem } from './problem.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. The scheme
 * is case-insensitive and may be followed by more than one space (RFC 9110
 * §11.1 and §11.4); the token is compared exactly.
 */
export function requireAdmin(
  adminToken: string,
  onFailure?: (req: Request) => void,
): RequestHandler {
  const expected = digest(adminToken);
  return (req, res, next) => {
    const match = /^Bearer +([^\s]+)$/i.exec(req.get('authorization') ?? '');
    if (!match || !timingSafeEqual(digest(match[1] as string), expected)) {
      onFailure?.(req);
      sendProblem(
        res,
        'UNAUTHORIZED',
        'an operator token is required: Authorization: Bearer <ADMIN_TOKEN>',
      );
      return;
    }
    next();
  };
}
