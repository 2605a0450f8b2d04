import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { readFileSync } from 'node:fs';
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

/**
 * How many migrations of `migrations/` the database has not applied. Drizzle's
 * migrator applies every journal entry newer than the last one it recorded in
 * drizzle.__drizzle_migrations; the same rule counts what is missing.
 */
export async function pendingMigrations(client: Pick<pg.Pool, 'query'>): Promise<number> {
  let applied = Number.NEGATIVE_INFINITY;
  try {
    const { rows } = await client.query<{ last: string | null }>(
      'SELECT max(created_at)::text AS last FROM drizzle.__drizzle_migrations',
    );
    if (rows[0]?.last != null) applied = Number(rows[0].last);
  } catch (err) {
    // No migration table (42P01) or schema (3F000): nothing was ever applied.
    const code = (err as { code?: string }).code;
    if (code !== '42P01' && code !== '3F000') throw err;
  }
  return journal().filter((when) => when > applied).length;
}

let journalEntries: readonly number[] | undefined;

/** The `when` of every migration the journal lists, read once. */
function journal(): readonly number[] {
  journalEntries ??= (
    JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as {
      entries: { when: number }[];
    }
  ).entries.map((e) => e.when);
  return journalEntries;
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
