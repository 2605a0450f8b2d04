import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { StartupError, describeUrl } from '../startup-error.js';
import * as schema from './schema.js';

export type Database = NodePgDatabase<typeof schema>;

export interface PostgresOptions {
  readonly max?: number;
  /**
   * A transaction left idle this long is aborted by the server. A worker
   * frozen inside its batch transaction would otherwise hold the coupon's row
   * lock and stall recovery of its batch for as long as it stays frozen.
   */
  readonly idleInTransactionTimeoutMs?: number;
  readonly applicationName: string;
  readonly onError?: (err: Error) => void;
}

export function createPool(url: string, options: PostgresOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName,
    connectionTimeoutMillis: 2_000,
    idleTimeoutMillis: 30_000,
    // A statement that runs this long is stuck; failing it lets the worker compensate and retry.
    statement_timeout: 15_000,
    idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 10_000,
  });
  // An idle client whose server went away emits 'error'; unhandled, it would end the process.
  pool.on('error', options.onError ?? (() => undefined));
  // So does a client checked out for a transaction (drizzle's db.transaction) when the server
  // ends its session, for example at the idle-in-transaction timeout after the process was
  // frozen: the pool listens only to idle clients. The failure also reaches the transaction's
  // next query, which is where it is handled; this listener only keeps the process alive.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  return pool;
}

export function createDatabase(pool: pg.Pool): Database {
  return drizzle(pool, { schema });
}

/** Fails fast with a message naming what to start or set. */
export async function checkPostgres(pool: pg.Pool, url: string): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    throw new StartupError(
      `PostgreSQL at ${describeUrl(url)} is unreachable (${(err as Error).message}). ` +
        'Start PostgreSQL (for example `docker compose up -d postgres`) or set DATABASE_URL; ' +
        '`npm run db:migrate` creates the database if it is missing.',
    );
  }
}
