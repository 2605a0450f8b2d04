import { throttled } from '../throttled-log.js';
import type { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Coupon } from '../../domain/coupon.js';
import { isClosedOrSoldOut } from '../../domain/coupon.js';
import type { EventScheduler, Logger } from '../../domain/ports.js';
import { redisCall } from '../redis/guard.js';
import type { RedisKeys } from '../redis/keys.js';

/**
 * One queue for every deployment sharing this Redis, told apart by the key
 * prefix. The braces are a hash tag: every key of the queue lands in one slot,
 * as BullMQ requires on Redis Cluster.
 */
export const LIFECYCLE_QUEUE = '{lifecycle}';

export type Transition = 'open' | 'close';
export type LifecycleJobName = Transition | 'reconcile';

export interface LifecycleJobData {
  readonly couponId?: number;
}

const RECONCILE_SCHEDULER_ID = 'reconcile';
/** Completed jobs are kept this long: adding one again is then a no-op, not a second run. */
const KEEP_COMPLETED_S = 7 * 86_400;
const KEEP_FAILED_S = 7 * 86_400;

export interface LifecycleQueueOptions {
  readonly redisUrl: string;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  readonly name: string;
  /** The service's own connection, for the small map from coupon to job ids. */
  readonly redis: Redis;
}

/**
 * The job id of a transition at a time: the same event, transition and time
 * give the same id in every process, and BullMQ adds an id only once, so
 * however many processes schedule an event its jobs exist once. (BullMQ
 * refuses `:` in custom ids.)
 */
export function jobId(transition: Transition, couponId: number, atMs: number): string {
  return `${transition}-${couponId}-${atMs}`;
}

/**
 * The BullMQ side of the lifecycle: the queue every role adds jobs to (the
 * EventScheduler) and, in the worker role, the BullMQ worker that runs them.
 * BullMQ gets connections of its own, as its documentation requires: the
 * worker's block, which must not hold up the service's commands.
 */
export class LifecycleQueue implements EventScheduler {
  private queueLoad: Promise<Queue> | undefined;
  private worker: Worker | undefined;
  private closed = false;

  constructor(private readonly options: LifecycleQueueOptions) {}

  /**
   * BullMQ is loaded, and its queue connected, on first use: an API process
   * needs them only when an operator creates or changes an event, and the
   * module alone adds about 15 MB to a process's memory (measured with
   * process.memoryUsage().rss around the import).
   */
  private queue(): Promise<Queue> {
    this.queueLoad ??= import('bullmq').then(({ Queue }) => {
      const queue = new Queue(LIFECYCLE_QUEUE, {
        prefix: this.options.keys.bullPrefix(),
        connection: {
          url: this.options.redisUrl,
          connectionName: `${this.options.name}:jobs`,
          // Adding a job happens in a request (creating or editing an event): fail rather than
          // wait for ever while Redis is away; the reconcile job adds it later.
          maxRetriesPerRequest: 1,
          commandTimeout: 5_000,
        },
        defaultJobOptions: {
          removeOnComplete: { age: KEEP_COMPLETED_S },
          removeOnFail: { age: KEEP_FAILED_S },
          attempts: 10,
          backoff: { type: 'exponential', delay: 1_000 },
        },
      });
      queue.on('error', throttled(this.options.logger, 'lifecycle queue: Redis connection error'));
      return queue;
    });
    return this.queueLoad;
  }

  /**
   * The jobs an event should have: open at `startsAt` (at once without one)
   * and close at `endsAt`, none once it is finished. Jobs of an older window
   * are removed; those that stay are left as they are.
   */
  async schedule(coupon: Coupon): Promise<void> {
    const live = !isClosedOrSoldOut(coupon);
    const wanted: Record<Transition, number | null> = {
      open: live ? (coupon.startsAt ?? coupon.createdAt).getTime() : null,
      close: live && coupon.endsAt ? coupon.endsAt.getTime() : null,
    };
    const map = this.options.keys.lifecycleJobs();
    const queue = await this.queue();
    for (const transition of ['open', 'close'] as const) {
      const field = `${coupon.id}:${transition}`;
      const previous = await redisCall(() => this.options.redis.hget(map, field));
      const at = wanted[transition];
      const id = at === null ? null : jobId(transition, coupon.id, at);
      if (at !== null && id !== null) {
        await queue.add(transition, { couponId: coupon.id } satisfies LifecycleJobData, {
          jobId: id,
          delay: Math.max(0, at - Date.now()),
        });
        await redisCall(() => this.options.redis.hset(map, field, id));
      } else {
        await redisCall(() => this.options.redis.hdel(map, field));
      }
      if (previous && previous !== id) {
        // A job running right now is locked and stays: it checks PostgreSQL and does nothing.
        await queue.remove(previous).catch(() => 0);
      }
    }
  }

  /** The job of a transition, for tests and tooling. */
  async job(id: string): Promise<Job | undefined> {
    return (await this.queue()).getJob(id);
  }

  /** Makes sure the reconcile job runs every `everyMs` (one scheduler, whatever the processes). */
  async scheduleReconcile(everyMs: number): Promise<void> {
    await (
      await this.queue()
    ).upsertJobScheduler(
      RECONCILE_SCHEDULER_ID,
      { every: everyMs },
      // One run a minute: keep a few to look at, not a week of them.
      {
        name: 'reconcile',
        data: {},
        opts: { attempts: 1, removeOnComplete: { count: 10 }, removeOnFail: { count: 100 } },
      },
    );
  }

  /** Starts running jobs in this process (the worker role). */
  async startWorker(
    handle: (name: LifecycleJobName, data: LifecycleJobData) => Promise<unknown>,
  ): Promise<void> {
    if (this.worker || this.closed) return;
    const { Worker } = await import('bullmq');
    if (this.worker || this.closed) return;
    this.worker = new Worker(
      LIFECYCLE_QUEUE,
      (job: Job) => handle(job.name as LifecycleJobName, job.data as LifecycleJobData),
      {
        prefix: this.options.keys.bullPrefix(),
        connection: {
          url: this.options.redisUrl,
          connectionName: `${this.options.name}:jobs-worker`,
          maxRetriesPerRequest: null,
        },
        concurrency: 4,
      },
    );
    this.worker.on('error', throttled(this.options.logger, 'lifecycle worker: Redis error'));
    this.worker.on('failed', (job, err) => {
      this.options.logger.warn('lifecycle job failed', {
        job: job?.name,
        jobId: job?.id,
        attempt: job?.attemptsMade,
        error: err.message,
      });
    });
  }

  /**
   * Lets a running job finish, then closes BullMQ's connections. Idempotent.
   * Bounded: with Redis away a graceful close would wait for it for ever, and
   * a job cut short is run again (its effects are idempotent).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    if (worker && !(await within(CLOSE_WAIT_MS, worker.close()))) {
      await within(CLOSE_WAIT_MS, worker.close(true));
    }
    if (this.queueLoad === undefined) return;
    const queue = await this.queueLoad;
    if (!(await within(CLOSE_WAIT_MS, queue.close()))) {
      await within(CLOSE_WAIT_MS, queue.disconnect());
    }
  }
}

const CLOSE_WAIT_MS = 5_000;

/** Whether the promise settled within `ms` (its outcome aside). */
async function within(ms: number, promise: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
