import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { getPriority, setPriority } from 'node:os';
import { createApp } from './api/app.js';
import { createMetricsApp } from './api/metrics-app.js';
import { listen, stopServing } from './api/server.js';
import { createContainer } from './container.js';
import { ConfigError, loadConfig, type Config } from './infra/config.js';
import { migrateDatabase } from './infra/db/migrate.js';
import { loadEnvFile } from './infra/env-file.js';
import { limitHeapGrowth } from './infra/heap.js';
import { createLogger, type AppLogger } from './infra/logger.js';
import { answerCollects, gatherThroughSupervisor } from './infra/metrics/cluster.js';
import { apiMetrics } from './infra/metrics/prometheus.js';
import { throttled } from './infra/throttled-log.js';
import { StartupError } from './infra/startup-error.js';
import { Shutdown } from './shutdown.js';
import { runSupervisor, type ChildMessage } from './supervisor.js';

/**
 * One process runs what ROLE says. With ROLE=all or ROLE=api and more than
 * one API process (API_PROCESSES, the number of cores by default), this
 * process becomes a supervisor: it migrates, then forks the API processes
 * and, with ROLE=all, one batch worker process.
 */
async function main(): Promise<void> {
  let config: Config;
  try {
    loadEnvFile();
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  limitHeapGrowth(config.heapGrowingPercent);
  const logger = createLogger(config.logLevel, { role: config.role });
  // Under the supervisor a child gives itself less time than the supervisor gives it, so that
  // it ends on its own (cutting what is left) before the supervisor would kill it.
  const timeoutMs = cluster.isWorker
    ? Math.max(config.shutdownTimeoutMs - 1_000, Math.floor(config.shutdownTimeoutMs * 0.75))
    : config.shutdownTimeoutMs;
  const shutdown = new Shutdown(timeoutMs, logger).listen();
  if (cluster.isPrimary) shutdown.watchParent();
  const supervise = cluster.isPrimary && config.role !== 'worker' && config.apiProcesses > 1;
  try {
    if (cluster.isPrimary) {
      if (config.adminTokenIsDefault) {
        logger.warn(
          'ADMIN_TOKEN is not set: using the development token, so the service listens on loopback only; set ADMIN_TOKEN to listen elsewhere (HOST)',
        );
      }
      if (!config.identity && config.role !== 'worker') {
        logger.warn(
          'neither JWT_SECRET nor JWT_JWKS_URL is set: no bearer tokens are checked and the user is whatever the body says (refused in production)',
        );
      }
      await migrateDatabase(config.databaseUrl);
    }
    if (supervise) {
      runSupervisor(config, logger, shutdown);
      return;
    }
    await serve(config, logger, shutdown);
  } catch (err) {
    fail(err, config, logger);
  }
}

async function serve(config: Config, logger: AppLogger, shutdown: Shutdown): Promise<void> {
  const container = await createContainer(config, logger);
  const metrics = container.metrics;
  // Under the supervisor a scrape of any API process answers for every process.
  if (cluster.isWorker && metrics) answerCollects(() => metrics.own());
  const api =
    cluster.isWorker && metrics && config.metrics
      ? {
          ...container.api,
          metrics: apiMetrics(metrics, config.metrics.token, {
            processes: gatherThroughSupervisor,
            onError: throttled(logger, 'metrics of the other processes not gathered'),
          }),
        }
      : container.api;
  let server: Server | undefined;
  if (config.role !== 'worker') {
    server = await listen(createApp(api), config.port, config.host, config.http);
    const address = server.address();
    logger.info('listening', {
      host: config.host,
      port: typeof address === 'object' && address ? address.port : config.port,
    });
  } else if (cluster.isPrimary && api.metrics && config.metrics?.workerPort != null) {
    // A worker on its own has no API to answer scrapes: it serves /metrics alone.
    server = await listen(
      createMetricsApp(api.metrics, logger),
      config.metrics.workerPort,
      config.host,
      config.http,
    );
    const address = server.address();
    logger.info('serving metrics', {
      host: config.host,
      port: typeof address === 'object' && address ? address.port : config.metrics.workerPort,
    });
  }
  if (config.role !== 'api') {
    const nice = config.role === 'worker' ? lowerPriority(config.workerNice, logger) : 0;
    container.worker.start();
    container.heartbeat.start();
    // A worker may be set to only drain (LIFECYCLE_JOBS=false): others run the jobs.
    if (config.lifecycleJobs) void container.lifecycle.start();
    logger.info('batch worker started', {
      nice,
      batchSize: config.batchSize,
      batchCron: config.batchCron,
      batchIntervalMs: config.batchIntervalMs,
      batchLanes: config.batchLanes,
      leaseMs: config.leaseMs,
    });
  }
  process.send?.({ type: 'ready' } satisfies ChildMessage);

  shutdown.onDeadline(() => server?.closeAllConnections());
  shutdown.onStop((reason) => {
    void (async () => {
      const started = performance.now();
      // /readyz answers 503 from here on; the requests already here get their real answers.
      container.beginShutdown();
      logger.info('shutting down', { signal: reason });
      // The worker finishes the batches in hand while the last answers go out; Redis and
      // PostgreSQL close only when both are done, so no answer is a 503 of our own making.
      await Promise.all([
        server ? stopServing(server) : undefined,
        // It beats while it finishes its batches: it is still working.
        container.worker.stop().then(() => container.heartbeat.stop()),
      ]);
      await container.close();
      logger.info('stopped', { durationMs: Math.round(performance.now() - started) });
      process.exit(0);
    })().catch((err: unknown) => {
      logger.error('shutdown failed', { error: String((err as Error).stack ?? err) });
      process.exit(1);
    });
  });
}

function fail(err: unknown, config: Config, logger: AppLogger): never {
  if (err instanceof StartupError) {
    logger.error(err.message);
    console.error(err.message);
    process.exit(1);
  }
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    const message = `cannot listen on PORT=${config.port} HOST=${config.host} (${code}): free the port or set PORT`;
    logger.error(message);
    console.error(message);
    process.exit(1);
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    const message = `cannot listen on HOST=${config.host} (${code}): it is not an address of this machine; set HOST`;
    logger.error(message);
    console.error(message);
    process.exit(1);
  }
  throw err;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

/**
 * A process that only drains (ROLE=worker) yields the CPU to the API processes
 * it shares a machine with: under a burst, answering comes first and the drain
 * takes what is left, catching up as soon as the burst eases (the queue never
 * holds more than the remaining stock). Returns the niceness in effect.
 */
function lowerPriority(nice: number, logger: AppLogger): number {
  if (nice > 0) {
    try {
      setPriority(Math.max(nice, getPriority()));
    } catch (err) {
      logger.warn('could not lower the worker priority', { error: (err as Error).message });
    }
  }
  return getPriority();
}
