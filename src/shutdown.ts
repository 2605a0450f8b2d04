import cluster from 'node:cluster';
import type { Logger } from './domain/ports.js';

/** A child of the supervisor asks it to stop the whole service. */
export type StopMessage = { readonly type: 'stop'; readonly reason: string };

/** How often the top process checks that whoever started it is still there. */
const PARENT_CHECK_MS = 1_000;

/**
 * The one way this process stops: SIGTERM, SIGINT, its parent going away (the
 * top process), or a request from code. The first request starts the deadline
 * (SHUTDOWN_TIMEOUT_MS) and runs the stop action; a request that comes while
 * the process is still starting is carried out as soon as the action is set.
 * At the deadline the deadline actions run (cut connections, kill children)
 * and the process exits 1.
 */
export class Shutdown {
  private reason: string | undefined;
  private action: ((reason: string) => void) | undefined;
  private readonly deadlineActions: (() => void)[] = [];

  constructor(
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /** Stops on SIGTERM and SIGINT; a child of the supervisor also asks it to stop the others. */
  listen(): this {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        // `kill <any pid of the service>` stops all of it, as it would a single process.
        if (cluster.isWorker && process.connected) {
          process.send?.({ type: 'stop', reason: `${signal} to pid ${process.pid}` });
        }
        this.request(signal);
      });
    }
    return this;
  }

  /**
   * The top process stops when whoever started it is gone (`npm start` killed
   * without passing the signal on, a shell that ended): it is re-parented, so
   * its parent pid changes; a process given an IPC channel also sees it close.
   */
  watchParent(): this {
    const parent = process.ppid;
    const timer = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(timer);
      this.request('parent exited');
    }, PARENT_CHECK_MS);
    timer.unref();
    if (process.send) process.once('disconnect', () => this.request('parent disconnected'));
    return this;
  }

  get requested(): string | undefined {
    return this.reason;
  }

  onStop(action: (reason: string) => void): void {
    this.action = action;
    if (this.reason !== undefined) action(this.reason);
  }

  onDeadline(action: () => void): void {
    this.deadlineActions.push(action);
  }

  request(reason: string): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    const timer = setTimeout(() => {
      this.logger.warn('shutdown took too long: exiting', { timeoutMs: this.timeoutMs });
      for (const act of this.deadlineActions) {
        try {
          act();
        } catch {
          // exiting anyway
        }
      }
      process.exit(1);
    }, this.timeoutMs);
    timer.unref();
    this.action?.(reason);
  }
}
