import { Router, type Request, type RequestHandler } from 'express';
import type { CheckConsistency } from '../../domain/use-cases/check-consistency.js';
import type { CloseCoupon } from '../../domain/use-cases/close-coupon.js';
import type { CreateCoupon } from '../../domain/use-cases/create-coupon.js';
import type { GetCoupon } from '../../domain/use-cases/get-coupon.js';
import type { SyncCoupon } from '../../domain/use-cases/sync-coupon.js';
import { requireAdmin } from '../admin-auth.js';
import { presentCoupon } from '../presenters.js';
import { couponIdParam, createCouponBody, parse } from '../validation.js';
import { ROUTES, serve } from './route-table.js';

export function couponRoutes(deps: {
  createCoupon: CreateCoupon;
  getCoupon: GetCoupon;
  closeCoupon: CloseCoupon;
  syncCoupon: SyncCoupon;
  checkConsistency: CheckConsistency;
  adminToken: string;
  /** Reads a JSON body, refusing other media types (see json-body.ts). */
  jsonBody: RequestHandler;
  /** Told of every refused operator token (the failed-authentication limit counts them). */
  onAuthFailure?: (req: Request) => void;
}): Router {
  const router = Router({ caseSensitive: true });
  const admin = requireAdmin(deps.adminToken, deps.onAuthFailure);

  serve(router, ROUTES.createCoupon, admin, deps.jsonBody, async (req, res) => {
    const body = parse(createCouponBody, req.body, 'body');
    const coupon = await deps.createCoupon.execute(body);
    const presented = presentCoupon(coupon);
    res.status(201).location(`/coupons/${coupon.id}`).json({
      id: presented.id,
      name: presented.name,
      totalQuantity: presented.totalQuantity,
      startsAt: presented.startsAt,
      endsAt: presented.endsAt,
      status: presented.status,
    });
  });

  serve(router, ROUTES.getCoupon, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(presentCoupon(await deps.getCoupon.execute(couponId)));
  });

  serve(router, ROUTES.closeCoupon, admin, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(presentCoupon(await deps.closeCoupon.execute(couponId)));
  });

  serve(router, ROUTES.syncCoupon, admin, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(await deps.syncCoupon.execute(couponId));
  });

  serve(router, ROUTES.checkConsistency, admin, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(await deps.checkConsistency.execute(couponId));
  });

  return router;
}
