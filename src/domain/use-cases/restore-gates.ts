import type { CouponRepository, GateMaintenance, Logger } from '../ports.js';
import type { CouponGateLoader } from './coupon-gate-loader.js';

/**
 * Notices a Redis that lost its data (its marker key is gone) and rebuilds
 * the gate of every live coupon from PostgreSQL at once, instead of waiting
 * for each coupon's next request.
 */
export class RestoreGates {
  private seenMarker = false;

  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      maintenance: GateMaintenance;
      loader: CouponGateLoader;
      logger: Logger;
    },
  ) {}

  /** Returns the number of coupons whose gate was (re)loaded. */
  async execute(): Promise<number> {
    if (await this.deps.maintenance.markPresent()) {
      this.seenMarker = true;
      return 0;
    }
    if (this.seenMarker) {
      this.deps.logger.error('Redis lost its data: rebuilding coupon gates from PostgreSQL');
    }
    this.seenMarker = true;
    const ids = await this.deps.coupons.liveCouponIds();
    for (const id of ids) await this.deps.loader.ensureLoaded(id);
    return ids.length;
  }
}
