import type { Worker } from 'node:cluster';
import type { MetricsJson } from './prometheus.js';

/**
 * How one scrape gathers every process of a supervised service: the API
 * process that got GET /metrics asks the supervisor (`gather`), the supervisor
 * asks each ready child (`collect`) and hands the answers back (`gathered`);
 * the API process aggregates them with prom-client. A child that does not
 * answer in time (starting, frozen) is left out of that scrape rather than
 * failing it.
 */
export type MetricsMessage =
  | { readonly type: 'metrics:gather'; readonly id: number }
  | { readonly type: 'metrics:gathered'; readonly id: number; readonly processes: MetricsJson[] }
  | { readonly type: 'metrics:collect'; readonly id: number }
  | { readonly type: 'metrics:collected'; readonly id: number; readonly metrics: MetricsJson };

/** How long the supervisor waits for each child, and a child for the supervisor. */
const CHILD_TIMEOUT_MS = 2_000;
const GATHER_TIMEOUT_MS = 5_000;

function isMetricsMessage(message: unknown): message is MetricsMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return typeof type === 'string' && type.startsWith('metrics:');
}

/** In a child: answers the supervisor's `collect` with this process's metrics. */
export function answerCollects(own: () => Promise<MetricsJson>): void {
  process.on('message', (message: unknown) => {
    if (!isMetricsMessage(message) || message.type !== 'metrics:collect') return;
    own().then(
      (metrics) => {
        process.send?.({
          type: 'metrics:collected',
          id: message.id,
          metrics,
        } satisfies MetricsMessage);
      },
      // Unanswered: the supervisor leaves this process out after its timeout.
      () => undefined,
    );
  });
}

let nextGather = 0;

/** In an API child: every process's metrics, through the supervisor. */
export function gatherThroughSupervisor(): Promise<MetricsJson[]> {
  const id = nextGather++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the supervisor did not answer the metrics request'));
    }, GATHER_TIMEOUT_MS);
    function onMessage(message: unknown) {
      if (!isMetricsMessage(message) || message.type !== 'metrics:gathered' || message.id !== id) {
        return;
      }
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(message.processes);
    }
    process.on('message', onMessage);
    process.send?.({ type: 'metrics:gather', id } satisfies MetricsMessage);
  });
}

let nextCollect = 0;

/** In the supervisor: answers a child's `gather` with the metrics of `children` that answered. */
export function handleGather(
  from: Worker,
  message: unknown,
  children: () => Iterable<Worker>,
): boolean {
  if (!isMetricsMessage(message) || message.type !== 'metrics:gather') return false;
  // The supervisor's own ids: two API processes' gathers may carry the same one.
  const id = nextCollect++;
  void Promise.all([...children()].map((child) => collect(child, id))).then((answers) => {
    if (!from.isConnected()) return;
    from.send({
      type: 'metrics:gathered',
      id: message.id,
      processes: answers.filter((a): a is MetricsJson => a !== undefined),
    } satisfies MetricsMessage);
  });
  return true;
}

function collect(child: Worker, id: number): Promise<MetricsJson | undefined> {
  if (!child.isConnected()) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const done = (metrics: MetricsJson | undefined) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(metrics);
    };
    const onMessage = (message: unknown) => {
      if (isMetricsMessage(message) && message.type === 'metrics:collected' && message.id === id) {
        done(message.metrics);
      }
    };
    const onExit = () => done(undefined);
    const timer = setTimeout(() => done(undefined), CHILD_TIMEOUT_MS);
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.send({ type: 'metrics:collect', id } satisfies MetricsMessage);
  });
}
