import { Router, type RequestHandler } from 'express';
import type { CheckConsistency } from '../../domain/use-cases/check-consistency.js';
import type { CloseCoupon } from '../../domain/use-cases/close-coupon.js';
import type { CouponStatsQuery } from '../../domain/use-cases/coupon-stats.js';
import type { CreateCoupon } from '../../domain/use-cases/create-coupon.js';
import type { GetCoupon } from '../../domain/use-cases/get-coupon.js';
import type { ListCoupons } from '../../domain/use-cases/list-coupons.js';
import type { OpenCoupon } from '../../domain/use-cases/open-coupon.js';
import type { PauseCoupon } from '../../domain/use-cases/pause-coupon.js';
import type { ResumeCoupon } from '../../domain/use-cases/resume-coupon.js';
import type { SyncCoupon } from '../../domain/use-cases/sync-coupon.js';
import type { UpdateCoupon } from '../../domain/use-cases/update-coupon.js';
import { presentCoupon, presentCouponListItem } from '../presenters.js';
import {
  couponIdParam,
  createCouponBody,
  encodeCursor,
  listCouponsQuery,
  parse,
  updateCouponBody,
} from '../validation.js';
import { ROUTES, serve } from './route-table.js';

export function couponRoutes(deps: {
  createCoupon: CreateCoupon;
  getCoupon: GetCoupon;
  closeCoupon: CloseCoupon;
  syncCoupon: SyncCoupon;
  checkConsistency: CheckConsistency;
  listCoupons: ListCoupons;
  updateCoupon: UpdateCoupon;
  openCoupon: OpenCoupon;
  pauseCoupon: PauseCoupon;
  resumeCoupon: ResumeCoupon;
  couponStats: CouponStatsQuery;
  /** Lets operators through (ADMIN_TOKEN or an operator's token) and audits what they do. */
  operator: RequestHandler;
  /** Reads a JSON body, refusing other media types (see json-body.ts). */
  jsonBody: RequestHandler;
}): Router {
  const router = Router({ caseSensitive: true });

  serve(router, ROUTES.createCoupon, deps.operator, deps.jsonBody, async (req, res) => {
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

  serve(router, ROUTES.closeCoupon, deps.operator, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(presentCoupon(await deps.closeCoupon.execute(couponId)));
  });

  serve(router, ROUTES.syncCoupon, deps.operator, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(await deps.syncCoupon.execute(couponId));
  });

  serve(router, ROUTES.checkConsistency, deps.operator, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(await deps.checkConsistency.execute(couponId));
  });

  serve(router, ROUTES.listCoupons, deps.operator, async (req, res) => {
    const query = parse(listCouponsQuery, queryOf(req.originalUrl), 'query');
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const listing = await deps.listCoupons.execute({
      status: query.status ?? null,
      limit,
      afterId: query.after ?? null,
    });
    res.json({
      items: listing.items.map((item) => presentCouponListItem(item.coupon, item.gate, listing.at)),
      limit,
      nextCursor: listing.nextAfterId === null ? null : encodeCursor(listing.nextAfterId),
    });
  });

  serve(router, ROUTES.updateCoupon, deps.operator, deps.jsonBody, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    const body = parse(updateCouponBody, req.body, 'body');
    res.json(presentCoupon(await deps.updateCoupon.execute(couponId, body)));
  });

  serve(router, ROUTES.openCoupon, deps.operator, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(presentCoupon(await deps.openCoupon.execute(couponId)));
  });

  serve(router, ROUTES.pauseCoupon, deps.operator, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(presentCoupon(await deps.pauseCoupon.execute(couponId)));
  });

  serve(router, ROUTES.resumeCoupon, deps.operator, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(presentCoupon(await deps.resumeCoupon.execute(couponId)));
  });

  serve(router, ROUTES.couponStats, deps.operator, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    res.json(await deps.couponStats.execute(couponId));
  });

  return router;
}

const DEFAULT_PAGE_SIZE = 20;

/**
 * The query string as an object, read here because the app parses no query
 * strings anywhere else: a repeated key becomes an array, which the schema refuses.
 */
function queryOf(url: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of new URL(url, 'http://localhost').searchParams) {
    const seen = out[key];
    out[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  return out;
}
