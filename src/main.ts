import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { getPriority, setPriority } from 'node:os';
import { createApp } from './api/app.js';
import { listen } from './api/server.js';
import { createContainer } from './container.js';
import { ConfigError, loadConfig, type Config } from './infra/config.js';
import { migrateDatabase } from './infra/db/migrate.js';
import { loadEnvFile } from './infra/env-file.js';
import { createLogger, type AppLogger } from './infra/logger.js';
import { StartupError } from './infra/startup-error.js';
import { runSupervisor, type ChildMessage } from './supervisor.js';

/**
 * One process runs what ROLE says. With ROLE=all or ROLE=api and more than
 * one API process (API_PROCESSES, the number of cores by default), this
 * process becomes a supervisor: it migrates, then forks the API processes
 * and, with ROLE=all, one batch worker process.
 */
async function main(): Promise<void> {
  // Ctrl-C reaches the whole process group: under a supervisor only it decides (it passes
  // SIGTERM on). Ignored from the first line, so a child still starting is not killed by it.
  if (cluster.isWorker) process.on('SIGINT', () => undefined);
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
  const logger = createLogger(config.logLevel, { role: config.role });
  const supervise = cluster.isPrimary && config.role !== 'worker' && config.apiProcesses > 1;
  try {
    if (cluster.isPrimary) {
      if (config.adminTokenIsDefault) {
        logger.warn(
          'ADMIN_TOKEN is not set: using the development token, so the service listens on loopback only; set ADMIN_TOKEN to listen elsewhere (HOST)',
        );
      }
      await migrateDatabase(config.databaseUrl);
    }
    if (supervise) {
      runSupervisor(config, logger);
      return;
    }
    await serve(config, logger);
  } catch (err) {
    fail(err, config, logger);
  }
}

async function serve(config: Config, logger: AppLogger): Promise<void> {
  const container = await createContainer(config, logger);
  let server: Server | undefined;
  if (config.role !== 'worker') {
    server = await listen(createApp(container.api), config.port, config.host, config.http);
    const address = server.address();
    logger.info('listening', {
      host: config.host,
      port: typeof address === 'object' && address ? address.port : config.port,
    });
  }
  if (config.role !== 'api') {
    const nice = config.role === 'worker' ? lowerPriority(config.workerNice, logger) : 0;
    container.worker.start();
    void container.lifecycle.start();
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

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    const closed = server ? new Promise((resolve) => server.close(resolve)) : Promise.resolve();
    server?.closeIdleConnections();
    await container.close();
    await closed;
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  if (!cluster.isWorker) process.on('SIGINT', () => void shutdown('SIGINT'));
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
