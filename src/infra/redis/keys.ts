/**
 * Every Redis key the service uses is built here. All keys of one coupon share
 * the hash tag `{<couponId>}` so that each script touches a single slot and
 * also runs on Redis Cluster.
 */
export interface CouponKeys {
  /** HASH total, stock, startsAt, endsAt, closed, paused, clock, epoch, since, opened (the open job ran). */
  readonly meta: string;
  /** SET of user ids issued this coupon. */
  readonly issued: string;
  /** ZSET user id -> arrival score (microseconds), the waiting line. */
  readonly queue: string;
  /** HASH arrival score -> "<userId>|<nonce>" for every request not yet final. */
  readonly requests: string;
  /** HASH user id -> arrival score for requests taken from the queue but not yet settled. */
  readonly inflight: string;
  /** HASH batch id -> JSON of the decided batch, kept until it is settled. */
  readonly batches: string;
  /** ZSET batch id -> lease expiry (ms since the epoch). */
  readonly leases: string;
  /**
   * STRING the token of the sync holding the coupon, with an expiry: no batch
   * is taken while it exists, and a sync that died releases it by expiring.
   */
  readonly sync: string;
}

/** How many coupons' key sets a RedisKeys keeps built; past it, it starts over. */
const COUPON_KEYS_KEPT = 1024;

export class RedisKeys {
  /**
   * Every accept builds the keys of its coupon: kept, they are built once per
   * coupon instead of nine string concatenations per request.
   */
  private readonly couponKeys = new Map<number, CouponKeys>();

  constructor(private readonly prefix: string) {}

  coupon(couponId: number): CouponKeys {
    let keys = this.couponKeys.get(couponId);
    if (keys) return keys;
    const base = `${this.prefix}coupon:{${couponId}}:`;
    keys = Object.freeze({
      meta: base + 'meta',
      issued: base + 'issued',
      queue: base + 'queue',
      requests: base + 'requests',
      inflight: base + 'inflight',
      batches: base + 'batches',
      leases: base + 'leases',
      sync: base + 'sync',
    });
    if (this.couponKeys.size >= COUPON_KEYS_KEPT) this.couponKeys.clear();
    this.couponKeys.set(couponId, keys);
    return keys;
  }

  /**
   * Every key the service keeps for a coupon (scratch sets aside: they are
   * short-lived and carry their own expiry).
   */
  couponKeyList(couponId: number): string[] {
    const k = this.coupon(couponId);
    return [k.meta, k.issued, k.queue, k.requests, k.inflight, k.batches, k.leases, k.sync];
  }

  /** The prefix of BullMQ's keys: under the service's, so that they share its namespace. */
  bullPrefix(): string {
    return `${this.prefix}bull`;
  }

  /**
   * HASH "<couponId>:<transition>" -> the id of the coupon's scheduled job, so
   * that a moved window finds the job to remove. Same hash tag as the queue.
   */
  lifecycleJobs(): string {
    return `${this.prefix}lifecycle:{lifecycle}:jobs`;
  }

  /** A scratch key in the coupon's slot, for building a set before swapping it in. */
  couponScratch(couponId: number, token: string): string {
    return `${this.prefix}coupon:{${couponId}}:scratch:${token}`;
  }

  /**
   * Set once by the first process to see this Redis. Its absence tells the
   * service that Redis is new or lost its data.
   */
  marker(): string {
    return `${this.prefix}marker`;
  }

  /** SET of coupon ids the worker drains. */
  activeCoupons(): string {
    return `${this.prefix}coupons:active`;
  }

  /**
   * Whether a key may carry an expiry of any length: scratch sets, sync locks,
   * the worker heartbeats and BullMQ's own keys (its locks). A coupon's other
   * keys may only expire well after the event is over (see `keyExpiryAt` in
   * the domain); one that expired sooner would silently forget state (an
   * issued set gone lets issued users in again).
   */
  mayExpire(key: string): boolean {
    const rest = key.slice(this.prefix.length);
    return (
      rest === 'workers:heartbeat' ||
      rest.startsWith('rl:') ||
      /^coupon:\{\d+\}:(scratch:.+|sync)$/.test(rest) ||
      rest.startsWith('bull:')
    );
  }

  /**
   * Prefix of one rate limit's counters (`<prefix>rl:<limit>:<client>`): STRINGs that
   * expire with their window. Outside every coupon's slot: a counter is one key per command.
   */
  rateLimit(limit: string): string {
    return `${this.prefix}rl:${limit}`;
  }

  /** ZSET worker id ("<host>:<pid>") -> its last heartbeat (ms since the epoch, Redis's clock). */
  workerHeartbeats(): string {
    return `${this.prefix}workers:heartbeat`;
  }

  /** The coupon a key belongs to, or null for a key of no coupon. */
  couponOf(key: string): number | null {
    const match = /^coupon:\{(\d+)\}:/.exec(key.slice(this.prefix.length));
    return match ? Number(match[1]) : null;
  }

  /** Pattern matching every key of this deployment (for tests and tooling). */
  all(): string {
    return `${this.prefix}*`;
  }
}
