import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './domain/ports.js';
import type { Config } from './infra/config.js';
import { handleGather, type MetricsMessage } from './infra/metrics/cluster.js';
import type { Shutdown, StopMessage } from './shutdown.js';

export type ChildMessage = { readonly type: 'ready' } | StopMessage | MetricsMessage;

const RESTART_DELAY_MS = 1_000;

/**
 * The primary of the multi-process mode: forks API_PROCESSES API processes
 * (node:cluster shares the port between them) and, with ROLE=all, one batch
 * worker process. A child that fails while starting stops everything (a bad
 * setting or a missing dependency will not fix itself); a child that dies
 * later is restarted.
 *
 * The service stops as one: SIGTERM or SIGINT to the supervisor or to any
 * child, or the supervisor's parent going away, sends SIGTERM to every child
 * and waits for them; at SHUTDOWN_TIMEOUT_MS whatever still runs is killed.
 * A child whose supervisor is gone exits at once (node:cluster's own rule).
 *
 * It also relays metrics: an API process answering GET /metrics gets every
 * ready child's metrics through it (infra/metrics/cluster.ts).
 */
export function runSupervisor(config: Config, logger: Logger, shutdown: Shutdown): void {
  const roles = new Map<Worker, 'api' | 'worker'>();
  const ready = new Set<Worker>();
  let stopping = false;

  const fork = (role: 'api' | 'worker') => {
    const child = cluster.fork({ ROLE: role });
    roles.set(child, role);
    child.on('message', (message: ChildMessage) => {
      if (message?.type === 'stop') shutdown.request(message.reason);
      // GET /metrics in an API process: every ready process's metrics, aggregated there.
      if (handleGather(child, message, () => ready)) return;
      if (message?.type !== 'ready') return;
      ready.add(child);
      if (ready.size === roles.size) {
        logger.info('all processes ready', {
          api: [...roles].filter(([, r]) => r === 'api').map(([w]) => w.process.pid),
          worker: [...roles].filter(([, r]) => r === 'worker').map(([w]) => w.process.pid),
        });
      }
    });
  };

  cluster.on('exit', (child, code, signal) => {
    const role = roles.get(child) ?? 'api';
    const wasReady = ready.has(child);
    roles.delete(child);
    ready.delete(child);
    if (stopping) {
      // A child that had to cut its shutdown short (its deadline) makes the whole stop unclean.
      // exitCode is also 1 when stopping because a child failed to start.
      if (code !== null && code !== 0) process.exitCode = 1;
      if (roles.size === 0) process.exit(process.exitCode ?? 0);
      return;
    }
    if (signal === 'SIGINT' || signal === 'SIGTERM') {
      // Stopped by someone (Ctrl-C reached a child still loading, before it could handle the
      // signal): stop the service cleanly rather than call it a failure and restart it.
      shutdown.request(`${signal} to pid ${child.process.pid}`);
      return;
    }
    if (!wasReady) {
      logger.error('a process failed while starting: stopping', { role, code, signal });
      stopping = true;
      for (const other of roles.keys()) other.process.kill('SIGTERM');
      process.exitCode = 1;
      if (roles.size === 0) process.exit(1);
      // Only for its deadline: the others are already told to stop.
      shutdown.request('a process failed while starting');
      return;
    }
    logger.error('a process died: restarting it', { role, pid: child.process.pid, code, signal });
    setTimeout(() => {
      if (!stopping) fork(role);
    }, RESTART_DELAY_MS);
  });

  shutdown.onDeadline(() => {
    for (const child of roles.keys()) child.process.kill('SIGKILL');
  });
  shutdown.onStop((reason) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal: reason, processes: roles.size });
    for (const child of roles.keys()) child.process.kill('SIGTERM');
    if (roles.size === 0) process.exit(0);
  });

  for (let i = 0; i < config.apiProcesses; i += 1) fork('api');
  if (config.role === 'all') fork('worker');
  logger.info('supervisor started', {
    apiProcesses: config.apiProcesses,
    workerProcess: config.role === 'all',
  });
}
