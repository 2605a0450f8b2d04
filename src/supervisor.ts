import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './domain/ports.js';
import type { Config } from './infra/config.js';

export type ChildMessage = { readonly type: 'ready' };

const RESTART_DELAY_MS = 1_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * The primary of the multi-process mode: forks API_PROCESSES API processes
 * (node:cluster shares the port between them) and, with ROLE=all, one batch
 * worker process. A child that fails while starting stops everything (a bad
 * setting or a missing dependency will not fix itself); a child that dies
 * later is restarted. SIGTERM is passed on and waited for.
 */
export function runSupervisor(config: Config, logger: Logger): void {
  const roles = new Map<Worker, 'api' | 'worker'>();
  const ready = new Set<Worker>();
  let stopping = false;

  const fork = (role: 'api' | 'worker') => {
    const child = cluster.fork({ ROLE: role });
    roles.set(child, role);
    child.on('message', (message: ChildMessage) => {
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
      // exitCode is 1 when stopping because a child failed to start.
      if (roles.size === 0) process.exit(process.exitCode ?? 0);
      return;
    }
    if (signal === 'SIGINT') {
      // Ctrl-C reached a child still loading (before it could ignore it): the group is being
      // stopped interactively, so stop cleanly rather than call it a failed start.
      stop('SIGINT');
      return;
    }
    if (!wasReady) {
      logger.error('a process failed while starting: stopping', { role, code, signal });
      stopping = true;
      for (const other of roles.keys()) other.process.kill('SIGTERM');
      process.exitCode = 1;
      if (roles.size === 0) process.exit(1);
      return;
    }
    logger.error('a process died: restarting it', { role, pid: child.process.pid, code, signal });
    setTimeout(() => {
      if (!stopping) fork(role);
    }, RESTART_DELAY_MS);
  });

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal, processes: roles.size });
    for (const child of roles.keys()) child.process.kill('SIGTERM');
    setTimeout(() => {
      for (const child of roles.keys()) child.process.kill('SIGKILL');
      process.exit(1);
    }, STOP_TIMEOUT_MS).unref();
    if (roles.size === 0) process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  for (let i = 0; i < config.apiProcesses; i += 1) fork('api');
  if (config.role === 'all') fork('worker');
  logger.info('supervisor started', {
    apiProcesses: config.apiProcesses,
    workerProcess: config.role === 'all',
  });
}
