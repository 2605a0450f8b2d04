import type { Server } from 'node:http';
import { createApp } from './api/app.js';
import { listen } from './api/server.js';
import { createContainer } from './container.js';
import { ConfigError, loadConfig, type Config } from './infra/config.js';
import { migrateDatabase } from './infra/db/migrate.js';
import { createLogger } from './infra/logger.js';
import { StartupError } from './infra/startup-error.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, { role: config.role });
  if (config.adminTokenIsDefault) {
    logger.warn(
      'ADMIN_TOKEN is not set: using the development token; set ADMIN_TOKEN before exposing the service',
    );
  }

  try {
    await migrateDatabase(config.databaseUrl);
    const container = await createContainer(config, logger);
    let server: Server | undefined;
    if (config.role !== 'worker') {
      server = await listen(createApp(container.api), config.port);
      const address = server.address();
      logger.info('listening', {
        port: typeof address === 'object' && address ? address.port : config.port,
      });
    }
    if (config.role !== 'api') {
      container.worker.start();
      logger.info('batch worker started', {
        batchSize: config.batchSize,
        batchCron: config.batchCron,
        batchIntervalMs: config.batchIntervalMs,
        leaseMs: config.leaseMs,
      });
    }

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
    process.on('SIGINT', () => void shutdown('SIGINT'));
  } catch (err) {
    if (err instanceof StartupError) {
      logger.error(err.message);
      console.error(err.message);
      process.exit(1);
    }
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      const message = `cannot listen on PORT=${config.port} (${code}): free the port or set PORT`;
      logger.error(message);
      console.error(message);
      process.exit(1);
    }
    throw err;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
