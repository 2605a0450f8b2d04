import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import winston from 'winston';
import Transport from 'winston-transport';
import { createApp } from '../../src/api/app.js';
import { listen } from '../../src/api/server.js';
import { createContainer, type Container, type PortOverrides } from '../../src/container.js';
import { loadConfig } from '../../src/infra/config.js';
import { migrateDatabase } from '../../src/infra/db/migrate.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

const baseDatabaseUrl =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Everything one test suite needs: its own database, its own Redis key space, the app on port 0. */
export interface Harness {
  readonly container: Container;
  readonly baseUrl: string;
  readonly databaseUrl: string;
  readonly prefix: string;
  /** Lines logged at info and above, for assertions on logging. */
  readonly logged: { level: string; message: string; meta: Record<string, unknown> }[];
  cleanup(): Promise<void>;
}

export interface HarnessOptions {
  readonly overrides?: PortOverrides;
  readonly env?: Record<string, string>;
  /** Reuse the database of another harness (several processes of one deployment). */
  readonly databaseUrl?: string;
  readonly prefix?: string;
  /**
   * The container's worker beats (as a started worker would), so /health and /readyz see a
   * live worker; false for tests where real worker processes, or none, must be the only ones.
   * By default only a harness that owns its key space beats (one beat per deployment, and
   * none left behind after the owner deleted the keys).
   */
  readonly heartbeat?: boolean;
  /** Run the event lifecycle jobs (BullMQ worker) in this process, as the worker role does. */
  readonly lifecycle?: boolean;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const token = randomBytes(4).toString('hex');
  const databaseUrl = options.databaseUrl ?? withDatabase(baseDatabaseUrl, `coupons_test_${token}`);
  const prefix = options.prefix ?? `test:${token}:`;
  const ownsDatabase = options.databaseUrl === undefined;
  // A harness sharing another's key space leaves the keys to their owner.
  const ownsKeys = options.prefix === undefined;
  if (ownsDatabase) await migrateDatabase(databaseUrl);

  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    // Thousands of parallel requests in one process on two cores: the bound under test is not this one.
    REDIS_COMMAND_TIMEOUT_MS: '10000',
    ADMIN_TOKEN,
    BATCH_SIZE: '100',
    BATCH_INTERVAL_MS: '5',
    LEASE_MS: '2000',
    PORT: '0',
    // Thousands of requests from one address and one user: suites that test limits turn them on.
    RATE_LIMIT_ENABLED: 'false',
    ...options.env,
  });
  const logged: Harness['logged'] = [];
  const logger = winston.createLogger({
    level: 'info',
    transports: [
      new winston.transports.Console({ silent: true }),
      new CaptureTransport((info) => logged.push(info)),
    ],
  });
  const container = await createContainer(config, logger, options.overrides);
  if (options.heartbeat ?? ownsKeys) container.heartbeat.start();
  if (options.lifecycle) await container.lifecycle.start();
  const server: Server = await listen(createApp(container.api), 0, '127.0.0.1', config.http);
  const { port } = server.address() as AddressInfo;

  return {
    container,
    baseUrl: `http://127.0.0.1:${port}`,
    databaseUrl,
    prefix,
    logged,
    async cleanup() {
      await new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      });
      // Stopped first: a beat after the keys were deleted would leave its key behind.
      await container.heartbeat.stop();
      // BullMQ's connections first: a job still running would write keys after the cleanup.
      await container.lifecycle.stop();
      if (ownsKeys) await deleteKeys(container, prefix);
      await container.close();
      if (ownsDatabase) await dropDatabase(databaseUrl);
    },
  };
}

class CaptureTransport extends Transport {
  constructor(
    private readonly sink: (line: {
      level: string;
      message: string;
      meta: Record<string, unknown>;
    }) => void,
  ) {
    super();
  }

  override log(info: Record<string, unknown>, callback: () => void): void {
    const { level, message, ...meta } = info;
    this.sink({ level: String(level), message: String(message), meta });
    callback();
  }
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Deletes every key of a deployment's key space (what a Redis that lost its data looks like to it). */
export async function deleteKeys(container: Container, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await container.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await container.redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Runs the worker until every queue is empty (deterministic; no cron involved). */
export async function drainAll(container: Container, maxRounds = 10_000): Promise<number> {
  let total = 0;
  for (let round = 0; round < maxRounds; round += 1) {
    const settled = await container.worker.drainOnce();
    if (settled === 0) return total;
    total += settled;
  }
  throw new Error('queues did not drain');
}
