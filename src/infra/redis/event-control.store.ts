import type { Redis } from 'ioredis';
import type { EventControl, GateFigures, ResizeResult } from '../../domain/ports.js';
import { redisCall } from './guard.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

type PipelineReply = [Error | null, unknown][] | null;

export class RedisEventControl implements EventControl {
  constructor(
    private readonly redis: Redis,
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
  ) {}

  async resize(couponId: number, totalQuantity: number): Promise<ResizeResult> {
    const k = this.keys.coupon(couponId);
    const reply = (await redisCall(() =>
      this.scripts.run('resize', [k.meta, k.sync], [totalQuantity]),
    )) as [number, number?];
    switch (reply[0]) {
      case 1:
        return { kind: 'resized', stock: Number(reply[1]) };
      case 0:
        return { kind: 'refused', minimum: Number(reply[1]) };
      case 2:
        return { kind: 'notLoaded' };
      case 3:
        return { kind: 'syncing' };
      default:
        throw new Error(`resize script returned ${JSON.stringify(reply)}`);
    }
  }

  async setWindow(couponId: number, startsAt: Date | null, endsAt: Date | null): Promise<boolean> {
    const reply = await redisCall(() =>
      this.scripts.run(
        'window',
        [this.keys.coupon(couponId).meta],
        [startsAt?.getTime() ?? '', endsAt?.getTime() ?? ''],
      ),
    );
    return Number(reply) === 1;
  }

  async setPaused(couponId: number, paused: boolean): Promise<void> {
    await redisCall(() =>
      this.redis.hset(this.keys.coupon(couponId).meta, 'paused', paused ? '1' : '0'),
    );
  }

  async figures(couponIds: readonly number[]): Promise<ReadonlyMap<number, GateFigures>> {
    const figures = new Map<number, GateFigures>();
    if (couponIds.length === 0) return figures;
    const pipeline = this.redis.pipeline();
    for (const id of couponIds) {
      const k = this.keys.coupon(id);
      pipeline.hmget(k.meta, 'stock', 'paused').zcard(k.queue).hlen(k.inflight);
    }
    const replies = (await redisCall(() => pipeline.exec())) as PipelineReply;
    if (!replies) throw new Error('the figures pipeline was discarded');
    couponIds.forEach((id, i) => {
      const [meta, queued, inFlight] = [0, 1, 2].map((j) => {
        const [err, value] = replies[i * 3 + j] as [Error | null, unknown];
        if (err) throw err;
        return value;
      }) as [(string | null)[], number, number];
      if (meta[0] === null || meta[0] === undefined) return;
      figures.set(id, {
        stock: Number(meta[0]),
        queued: Number(queued),
        inFlight: Number(inFlight),
        paused: meta[1] === '1',
      });
    });
    return figures;
  }

  async recentArrivals(couponId: number, windowMs: number): Promise<number> {
    const k = this.keys.coupon(couponId);
    return redisCall(async () => {
      // Arrival scores are Redis time in microseconds: the window is measured on Redis's clock.
      const [seconds, micros] = await this.redis.time();
      const since = Number(seconds) * 1_000_000 + Number(micros) - windowMs * 1000;
      const [queued, inflight] = await Promise.all([
        this.redis.zcount(k.queue, since, '+inf'),
        this.redis.hvals(k.inflight),
      ]);
      return queued + inflight.filter((arrival) => Number(arrival) >= since).length;
    });
  }
}
