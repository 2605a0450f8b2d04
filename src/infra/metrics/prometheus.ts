import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import type { Outcome } from '../../domain/issue-request.js';
import type { AcceptOutcome, Metrics } from '../../domain/ports.js';

/** One process's metrics as prom-client exports them for aggregation. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** What the process answering a scrape reads from the stores, once per scrape. */
export interface MetricsProbe {
  /** Queued and in-flight requests of the live events (those in the worker's rounds). */
  liveQueues(): Promise<ReadonlyMap<number, { queued: number; inFlight: number }>>;
  redisUp(): Promise<boolean>;
  postgresUp(): Promise<boolean>;
}

export const ACCEPT_OUTCOMES = [
  'accepted',
  'repeat',
  'sold_out',
  'already_issued',
  'not_open',
  'paused',
  'not_found',
  'rate_limited',
  'invalid',
  'unauthorized',
  'unavailable',
  'error',
] as const satisfies readonly AcceptOutcome[];

const DECISIONS: Record<Outcome, string> = {
  ISSUED: 'issued',
  SOLD_OUT: 'sold_out',
  ALREADY_ISSUED: 'already_issued',
  EVENT_CLOSED: 'event_closed',
};

/** A probe that does not answer within this long counts as down (or is left out). */
const PROBE_TIMEOUT_MS = 2_000;

interface Observer {
  observe(value: number): void;
}

/**
 * The service's Prometheus metrics in one process. Two registries:
 * - `registry`: what this process counts (requests, decisions, batches, Node's
 *   process figures); under the supervisor every process's copy is gathered and
 *   aggregated by prom-client (counters and histograms summed, gauges by the
 *   aggregator named on them);
 * - probes: read from Redis and PostgreSQL by the process answering the scrape,
 *   once, since they describe the whole deployment rather than one process.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly probes = new Registry();
  private readonly acceptCounters: Record<AcceptOutcome, { inc(): void }>;
  private readonly decisionCounters: Record<Outcome, { inc(n: number): void }>;
  private readonly compensations: Counter;
  private readonly recoveries: Counter;
  private readonly dbFailures: Counter;
  private readonly batchDuration: Histogram;
  private readonly batchSize: Histogram;
  private readonly lastTick: Gauge | undefined;
  private readonly http: Histogram<'route' | 'method' | 'status'>;
  /** Children of `http` by route, method and status: no label hashing to find one. */
  private readonly httpChildren = new Map<string, Map<string, Map<number, Observer>>>();

  constructor(options: { runsWorker: boolean; probe?: MetricsProbe }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const accepts = new Counter({
      name: 'coupon_issue_requests_total',
      help: 'Issue requests answered at accept time, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.acceptCounters = boundChildren(accepts, ACCEPT_OUTCOMES, (outcome) => outcome);
    const decisions = new Counter({
      name: 'coupon_decisions_total',
      help: 'Requests decided by the batch worker and recorded in PostgreSQL, by result',
      labelNames: ['result'],
      registers,
    });
    this.decisionCounters = boundChildren(
      decisions,
      Object.keys(DECISIONS) as Outcome[],
      (outcome) => DECISIONS[outcome],
    );
    this.compensations = new Counter({
      name: 'coupon_compensations_total',
      help: 'Batches PostgreSQL did not take, undone in Redis and put back in the queue',
      registers,
    });
    this.recoveries = new Counter({
      name: 'coupon_recoveries_total',
      help: 'Batches whose lease expired, settled by recovery',
      registers,
    });
    this.dbFailures = new Counter({
      name: 'coupon_db_failures_total',
      help: 'Batch commits that PostgreSQL failed',
      registers,
    });
    this.batchDuration = new Histogram({
      name: 'coupon_batch_duration_seconds',
      help: 'Time to take, decide, record and settle one batch',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'coupon_batch_size',
      help: 'Requests in one batch',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000],
      registers,
    });
    if (options.runsWorker) {
      this.lastTick = new Gauge({
        name: 'coupon_worker_last_tick_timestamp_seconds',
        help: 'When the batch worker last began a pass over the queues (Unix time)',
        aggregator: 'max',
        registers,
      });
    }
    this.http = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from a request reaching the app to its answer being written, by route pattern',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    if (options.probe) this.defineProbes(options.probe);
  }

  accepted(outcome: AcceptOutcome): void {
    this.acceptCounters[outcome].inc();
  }

  decided(outcomes: Readonly<Record<Outcome, number>>): void {
    for (const outcome of Object.keys(DECISIONS) as Outcome[]) {
      const n = outcomes[outcome];
      if (n > 0) this.decisionCounters[outcome].inc(n);
    }
  }

  compensated(): void {
    this.compensations.inc();
  }

  recovered(): void {
    this.recoveries.inc();
  }

  commitFailed(): void {
    this.dbFailures.inc();
  }

  batch(size: number, seconds: number): void {
    this.batchSize.observe(size);
    this.batchDuration.observe(seconds);
  }

  workerTick(nowMs: number): void {
    this.lastTick?.set(nowMs / 1000);
  }

  /** One answered HTTP request; `route` is a route-table pattern (or one label for the rest). */
  request(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.httpChildren.get(route);
    if (!byMethod) this.httpChildren.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (!child) byStatus.set(status, (child = this.http.labels(route, method, String(status))));
    child.observe(seconds);
  }

  /** This process's own metrics, for the supervisor to aggregate. */
  own(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON() as Promise<MetricsJson>;
  }

  /**
   * The text a scrape gets: the processes' metrics (this one's alone when `processes`
   * is absent) aggregated, and the probes read now.
   */
  async render(processes?: readonly MetricsJson[]): Promise<string> {
    const [own, probes] = await Promise.all([
      processes ? undefined : this.own(),
      this.probes.getMetricsAsJSON() as Promise<MetricsJson>,
    ]);
    return AggregatorRegistry.aggregate([...(processes ?? [own as MetricsJson]), probes]).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private defineProbes(probe: MetricsProbe): void {
    const registers = [this.probes];
    // One read serves both gauges: the first collect starts it, the second reuses it.
    let reading: Promise<ReadonlyMap<number, { queued: number; inFlight: number }>> | undefined;
    const read = () => {
      reading ??= withTimeout(probe.liveQueues(), new Map()).finally(() => {
        setImmediate(() => (reading = undefined));
      });
      return reading;
    };
    const live = (
      name: string,
      help: string,
      pick: (q: { queued: number; inFlight: number }) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['coupon'],
        aggregator: 'max',
        registers,
        async collect() {
          const queues = await read();
          // Events no longer live drop out: only the live ones have series.
          this.reset();
          for (const [coupon, figures] of queues) this.labels(String(coupon)).set(pick(figures));
        },
      });
    live('coupon_queue_depth', 'Requests waiting in a live event’s queue', (q) => q.queued);
    live(
      'coupon_inflight',
      'Requests of a live event taken into batches not yet settled',
      (q) => q.inFlight,
    );
    const up = (name: string, help: string, check: () => Promise<boolean>) => {
      new Gauge({
        name,
        help,
        aggregator: 'min',
        registers,
        async collect() {
          this.set((await withTimeout(check(), false)) ? 1 : 0);
        },
      });
    };
    up('coupon_redis_up', 'Whether Redis answered a PING during this scrape (1) or not (0)', () =>
      probe.redisUp(),
    );
    up('coupon_postgres_up', 'Whether PostgreSQL answered during this scrape (1) or not (0)', () =>
      probe.postgresUp(),
    );
  }
}

function withTimeout<T>(work: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), PROBE_TIMEOUT_MS);
  });
  return Promise.race([work.catch(() => fallback), late]).finally(() => clearTimeout(timer));
}

/**
 * What the API takes (see ApiMetrics in src/api/app.ts): a plain object, so
 * the process layout can choose how a scrape is gathered. `gather` returns
 * every process's metrics (through the supervisor); when it fails, the scrape
 * gets this process's alone rather than an error.
 */
export function apiMetrics(
  metrics: PrometheusMetrics,
  token: string | null,
  gather?: { processes: () => Promise<MetricsJson[]>; onError: (err: Error) => void },
) {
  return {
    token,
    contentType: metrics.contentType,
    request: (route: string, method: string, status: number, seconds: number) =>
      metrics.request(route, method, status, seconds),
    accepted: (outcome: AcceptOutcome) => metrics.accepted(outcome),
    render: gather
      ? async () =>
          metrics.render(
            await gather.processes().catch((err: unknown) => {
              gather.onError(err instanceof Error ? err : new Error(String(err)));
              return undefined;
            }),
          )
      : () => metrics.render(),
  };
}

/**
 * A counter's child for each key, bound once (no label hashing per count) and
 * present at 0 from the start, so rate() sees the first count.
 */
function boundChildren<K extends string>(
  counter: Counter,
  keys: readonly K[],
  label: (key: K) => string,
): Record<K, { inc(n?: number): void }> {
  return Object.fromEntries(
    keys.map((key) => {
      const child = counter.labels(label(key));
      child.inc(0);
      return [key, child];
    }),
  ) as Record<K, { inc(n?: number): void }>;
}
