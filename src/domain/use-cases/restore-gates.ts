import type { CouponRepository, GateMaintenance, Logger } from '../ports.js';
import { isFinishedRefusal, type CouponGateLoader } from './coupon-gate-loader.js';
import type { SyncCoupon } from './sync-coupon.js';

/**
 * Watches the Redis behind the gates. When its marker key is gone (Redis is
 * new or lost its data) every live coupon's gate is rebuilt from PostgreSQL
 * at once, instead of at each coupon's next request. When Redis restarted
 * with its data (AOF), the last second of writes may still be missing, so
 * every live coupon is synced from PostgreSQL.
 */
export class RestoreGates {
  private seenMarker = false;
  private runId: string | undefined;

  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      maintenance: GateMaintenance;
      loader: CouponGateLoader;
      sync: SyncCoupon;
      logger: Logger;
    },
  ) {}

  /** Returns the number of coupons whose gate was (re)loaded or synced. */
  async execute(): Promise<number> {
    const runId = await this.deps.maintenance.serverRunId();
    const restarted = this.runId !== undefined && runId !== this.runId;
    this.runId = runId;
    if (!(await this.deps.maintenance.markPresent())) {
      if (this.seenMarker) {
        this.deps.logger.error('Redis lost its data: rebuilding coupon gates from PostgreSQL');
      }
      this.seenMarker = true;
      const ids = await this.deps.coupons.liveCouponIds();
      for (const id of ids) {
        // Closed or sold out since it was listed: nothing to load.
        await this.deps.loader.ensureLoaded(id).catch((err: unknown) => {
          if (!isFinishedRefusal(err)) throw err;
        });
      }
      return ids.length;
    }
    this.seenMarker = true;
    if (!restarted) return 0;
    this.deps.logger.warn('Redis restarted: syncing coupon gates from PostgreSQL');
    const ids = await this.deps.coupons.liveCouponIds();
    for (const id of ids) await this.deps.sync.execute(id);
    return ids.length;
  }
}
