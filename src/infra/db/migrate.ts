import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { join } from 'node:path';
import pg from 'pg';
import { projectRoot } from '../project-root.js';
import { StartupError, describeUrl } from '../startup-error.js';

const MIGRATIONS_FOLDER = join(projectRoot(), 'migrations');
/** Any constant works; it only has to be the same in every process of the service. */
const MIGRATION_LOCK = 727_274_001;

/**
 * Creates the database if it does not exist, then applies the migrations in
 * `migrations/`. Several processes may start at once: an advisory lock lets
 * one migrate while the others wait.
 */
export async function migrateDatabase(url: string): Promise<void> {
  await ensureDatabaseExists(url);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await connectOrExplain(client, url);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    // The migrator reports what it applies through NOTICEs about existing schemas; they are noise here.
    await client.query("SET client_min_messages = 'warning'");
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.end();
  }
}

async function ensureDatabaseExists(url: string): Promise<void> {
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await probe.connect();
    await probe.end();
    return;
  } catch (err) {
    await probe.end().catch(() => undefined);
    if ((err as { code?: string }).code !== '3D000') return connectOrExplain(null, url, err);
  }
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  target.pathname = '/postgres';
  const admin = new pg.Client({
    connectionString: target.toString(),
    connectionTimeoutMillis: 5_000,
  });
  await connectOrExplain(admin, target.toString());
  try {
    await admin.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } catch (err) {
    // Another process created it first.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await admin.end();
  }
}

async function connectOrExplain(
  client: pg.Client | null,
  url: string,
  failure?: unknown,
): Promise<void> {
  try {
    if (failure) throw failure;
    await client?.connect();
  } catch (err) {
    throw new StartupError(
      `PostgreSQL at ${describeUrl(url)} is unreachable (${(err as Error).message}). ` +
        'Start PostgreSQL (for example `docker compose up -d postgres`) or set DATABASE_URL.',
    );
  }
}
