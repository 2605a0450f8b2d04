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
import type { Logger } from '../../domain/ports.js';
import { presentCoupon, presentCouponListItem } from '../presenters.js';
import { requestLogger } from '../request-id.js';
import {
  couponIdParam,
  createCouponBody,
  encodeCursor,
  listCouponsQuery,
  parse,
  updateCouponBody,
} from '../validation.js';
import { ROUTES, serve, type Route } from './route-table.js';

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
  logger: Logger;
}): Router {
  const router = Router({ caseSensitive: true });
  /** A read or an action on one coupon: its id from the path, the use case's answer as JSON. */
  const onCoupon = (
    route: Route,
    guards: RequestHandler[],
    run: (couponId: number) => Promise<unknown>,
  ) =>
    serve(router, route, ...guards, async (req, res) => {
      res.json(await run(parse(couponIdParam, req.params.couponId, 'couponId')));
    });

  serve(router, ROUTES.createCoupon, deps.operator, deps.jsonBody, async (req, res) => {
    const body = parse(createCouponBody, req.body, 'body');
    const coupon = await deps.createCoupon.execute(body, requestLogger(deps.logger, res));
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

  onCoupon(ROUTES.getCoupon, [], async (id) => presentCoupon(await deps.getCoupon.execute(id)));

  onCoupon(ROUTES.closeCoupon, [deps.operator], async (id) =>
    presentCoupon(await deps.closeCoupon.execute(id)),
  );

  onCoupon(ROUTES.syncCoupon, [deps.operator], (id) => deps.syncCoupon.execute(id));

  onCoupon(ROUTES.checkConsistency, [deps.operator], (id) => deps.checkConsistency.execute(id));

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
    res.json(
      presentCoupon(
        await deps.updateCoupon.execute(couponId, body, requestLogger(deps.logger, res)),
      ),
    );
  });

  onCoupon(ROUTES.openCoupon, [deps.operator], async (id) =>
    presentCoupon(await deps.openCoupon.execute(id)),
  );

  onCoupon(ROUTES.pauseCoupon, [deps.operator], async (id) =>
    presentCoupon(await deps.pauseCoupon.execute(id)),
  );

  onCoupon(ROUTES.resumeCoupon, [deps.operator], async (id) =>
    presentCoupon(await deps.resumeCoupon.execute(id)),
  );

  onCoupon(ROUTES.couponStats, [deps.operator], (id) => deps.couponStats.execute(id));

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
