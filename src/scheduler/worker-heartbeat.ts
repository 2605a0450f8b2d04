import { hostname } from 'node:os';
import type { Logger } from '../domain/ports.js';

export interface HeartbeatStore {
  beat(worker: string): Promise<void>;
}

const FAILURE_LOG_EVERY_MS = 5_000;

/**
 * Tells the API processes (their /readyz) that a batch worker is alive: a beat
 * in Redis every `intervalMs`.
 *
 * It beats from its own timer, not from the drain loop. A process that is
 * frozen, dead or whose event loop is blocked stops beating, which is what
 * readiness must see. A drain loop that merely waits long (a batch committing
 * under load, a back-off while PostgreSQL is down) must not make the service
 * "not ready": every wait in that loop is bounded (Redis command timeouts,
 * PostgreSQL's statement_timeout), so a loop cannot hang unseen; it fails and
 * backs off, which /health reports as the worker's state.
 */
export class WorkerHeartbeat {
  readonly id = `${hostname()}:${process.pid}`;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private lastFailureLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: HeartbeatStore,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    const beat = () => {
      // A beat still waiting (Redis slow) is not doubled.
      if (this.beating) return;
      this.beating = this.store
        .beat(this.id)
        .catch((err: unknown) => this.failed(err))
        .finally(() => {
          this.beating = undefined;
        });
    };
    beat();
    this.timer = setInterval(beat, this.intervalMs);
    this.timer.unref();
  }

  /**
   * Stops beating (call it once the drain has stopped). The last beat stays and ages like a
   * dead worker's: a worker stopped on purpose is usually replaced at once (a restart, a
   * deploy), and a replacement that beats within the stale limit keeps the API processes
   * ready throughout instead of flapping them all to 503.
   */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  private failed(err: unknown): void {
    // The drain loop logs the outage itself; one line per period here is enough.
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) return;
    this.lastFailureLog = now;
    this.logger.warn('worker heartbeat failed', { error: (err as Error).message });
  }
}
