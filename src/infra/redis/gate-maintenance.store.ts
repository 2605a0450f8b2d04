import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CouponGateState } from '../../domain/coupon.js';
import type { GateMaintenance, GateSnapshot, SyncApplied } from '../../domain/ports.js';
import { redisCall } from './guard.js';
import { fillScratchSet } from './scratch-set.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';
import { timeReplyMs } from './time.js';

const ISSUED_CODE = 1;

export class RedisGateMaintenance implements GateMaintenance {
  private readonly marker = randomBytes(8).toString('hex');

  constructor(
    private readonly redis: Redis,
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
  ) {}

  async inspect(couponId: number): Promise<GateSnapshot | null> {
    const k = this.keys.coupon(couponId);
    return redisCall(async () => {
      const [meta, issued, queued, waiting, batches, expired, syncing] = await Promise.all([
        this.redis.hgetall(k.meta),
        this.redis.smembers(k.issued),
        this.redis.zcard(k.queue),
        this.redis.hlen(k.requests),
        this.redis.hgetall(k.batches),
        this.redis.time().then((time) => this.redis.zcount(k.leases, '-inf', timeReplyMs(time))),
        this.redis.exists(k.sync),
      ]);
      if (meta.stock === undefined) return null;
      const inflightIssued: string[] = [];
      for (const raw of Object.values(batches)) {
        const items = (JSON.parse(raw) as { i: (string | number)[] }).i;
        for (let i = 0; i < items.length; i += 3) {
          if (Number(items[i + 2]) === ISSUED_CODE) inflightIssued.push(String(items[i]));
        }
      }
      return {
        totalQuantity: Number(meta.total),
        stock: Number(meta.stock),
        issuedUserIds: issued,
        queued,
        waitingRecords: waiting,
        inflightBatches: Object.keys(batches).length,
        expiredLeases: expired,
        inflightIssuedUserIds: inflightIssued,
        paused: syncing === 1,
        closed: meta.closed === '1',
        operatorPaused: meta.paused === '1',
      };
    });
  }

  async lockSync(couponId: number, ttlMs: number): Promise<string | null> {
    const token = randomBytes(8).toString('hex');
    const set = await redisCall(() =>
      this.redis.set(this.keys.coupon(couponId).sync, token, 'PX', ttlMs, 'NX'),
    );
    return set === 'OK' ? token : null;
  }

  async unlockSync(couponId: number, token: string): Promise<void> {
    await redisCall(() =>
      this.scripts.run('unlock-sync', [this.keys.coupon(couponId).sync], [token]),
    );
  }

  async replace(state: CouponGateState, token: string): Promise<SyncApplied> {
    const k = this.keys.coupon(state.couponId);
    return redisCall(async () => {
      const scratch = await fillScratchSet(
        this.redis,
        this.keys,
        state.couponId,
        state.issuedUserIds,
      );
      const reply = (await this.scripts.run(
        'sync',
        [k.meta, k.issued, scratch, k.leases, k.sync],
        [state.totalQuantity, state.remaining, state.closed ? 1 : 0, token, state.paused ? 1 : 0],
      )) as [number, string?];
      if (reply[0] === 1) return 'replaced';
      if (reply[0] === 0) return 'batchInFlight';
      return 'lockLost';
    });
  }

  async serverRunId(): Promise<string> {
    const info = await redisCall(() => this.redis.info('server'));
    return /run_id:(\w+)/.exec(info)?.[1] ?? '';
  }

  async markPresent(): Promise<boolean> {
    const set = await redisCall(() => this.redis.set(this.keys.marker(), this.marker, 'NX'));
    return set === null;
  }
}
