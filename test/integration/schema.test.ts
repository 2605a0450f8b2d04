import { expect } from 'chai';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { migrateDatabase } from '../../src/infra/db/migrate.js';
import { projectRoot } from '../../src/infra/project-root.js';

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The identifiers the batch worker looks up and inserts by the thousand. */
const IDENTIFIERS = [
  ['issue_requests', 'request_id'],
  ['issue_requests', 'user_id'],
  ['issued_coupons', 'user_id'],
  ['issued_coupons', 'request_id'],
  ['worker_batches', 'batch_id'],
] as const;

function databaseUrl(name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withClient<T>(url: string, use: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

async function columnCollations(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ t: string; c: string; collation: string | null }>(
    `SELECT table_name AS t, column_name AS c, collation_name AS collation
     FROM information_schema.columns WHERE table_schema = 'public'`,
  );
  return IDENTIFIERS.map(([t, c]) => {
    const row = rows.find((r) => r.t === t && r.c === c);
    return `${t}.${c}: ${row?.collation ?? 'default'}`;
  });
}

/** Each index over an identifier, with the collation of its text key columns. */
async function indexCollations(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ index: string; collations: string }>(
    `SELECT i.relname AS index,
            string_agg(coll.collname, ',' ORDER BY k.ord) AS collations
     FROM pg_index x
     JOIN pg_class i ON i.oid = x.indexrelid
     JOIN pg_class t ON t.oid = x.indrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
     CROSS JOIN LATERAL unnest(x.indcollation::oid[]) WITH ORDINALITY AS k(coll, ord)
     JOIN pg_collation coll ON coll.oid = k.coll
     WHERE t.relname IN ('issue_requests', 'issued_coupons', 'worker_batches')
     GROUP BY i.relname ORDER BY i.relname`,
  );
  return rows.map((r) => `${r.index}: ${r.collations}`);
}

const EXPECTED_COLUMNS = IDENTIFIERS.map(([t, c]) => `${t}.${c}: C`);
const EXPECTED_INDEXES = [
  'issue_requests_pkey: C',
  'issued_coupons_coupon_user_uq: C',
  'worker_batches_pkey: C',
];

describe('the database schema', () => {
  const created: string[] = [];
  let scratch: string | undefined;

  afterEach(async () => {
    await withClient(adminUrl, async (admin) => {
      for (const name of created.splice(0)) {
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }
    });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  });

  function newDatabase(): string {
    const name = `coupons_schema_${randomBytes(4).toString('hex')}`;
    created.push(name);
    return databaseUrl(name);
  }

  it('when a database is migrated, then the identifiers the worker looks up and inserts compare byte by byte (collation C), and so do their indexes', async () => {
    const url = newDatabase();
    await migrateDatabase(url);

    await withClient(url, async (db) => {
      expect(await columnCollations(db)).to.deep.equal(EXPECTED_COLUMNS);
      expect(await indexCollations(db)).to.deep.equal(EXPECTED_INDEXES);
    });
  });

  it("when a database is migrated, then issue_requests has no index but its primary key, and one coupon's requests are found through it by request id prefix", async () => {
    const url = newDatabase();
    await migrateDatabase(url);

    await withClient(url, async (db) => {
      const { rows } = await db.query<{ index: string }>(
        `SELECT indexname AS index FROM pg_indexes
         WHERE schemaname = 'public' AND tablename = 'issue_requests' ORDER BY indexname`,
      );
      expect(rows.map((r) => r.index)).to.deep.equal(['issue_requests_pkey']);

      // Enough rows of other coupons that a scan of the whole table costs more than the probe.
      await db.query(
        `INSERT INTO issue_requests
           (request_id, coupon_id, user_id, status, reason, issue_id, requested_at, decided_at)
         SELECT c || '-' || g || '-n', c, 'u' || g, 'REJECTED', 'SOLD_OUT', NULL, now(), now()
         FROM generate_series(1, 30) AS c, generate_series(1, 1000) AS g`,
      );
      await db.query('ANALYZE issue_requests');
      const plan = await db.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT count(*) FROM issue_requests WHERE request_id LIKE '12-%'`,
      );
      const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(text).to.contain('issue_requests_pkey');
      expect(text).to.contain(
        `Index Cond: ((request_id >= '12-'::text) AND (request_id < '12.'::text))`,
      );
      const counted = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM issue_requests WHERE request_id LIKE '12-%'`,
      );
      expect(counted.rows[0]?.n).to.equal(1000);
    });
  });

  it('when a database migrated before the identifiers compared byte by byte holds requests, then upgrading keeps every row and every unique index', async () => {
    const url = newDatabase();
    // The migrations as they stood before 0004: the same folder, its journal cut there.
    scratch = mkdtempSync(join(tmpdir(), 'migrations-'));
    cpSync(join(projectRoot(), 'migrations'), scratch, { recursive: true });
    const journalPath = join(scratch, 'meta', '_journal.json');
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as {
      entries: { idx: number; tag: string }[];
    };
    const upgrade = journal.entries.findIndex((e) => e.tag.startsWith('0004_'));
    expect(upgrade, 'migration 0004 in the journal').to.be.greaterThan(0);
    journal.entries = journal.entries.slice(0, upgrade);
    writeFileSync(journalPath, JSON.stringify(journal));
    await withClient(adminUrl, (admin) =>
      admin.query(`CREATE DATABASE "${new URL(url).pathname.slice(1)}"`),
    );
    await withClient(url, async (db) => {
      await db.query("SET client_min_messages = 'warning'");
      await migrate(drizzle(db), { migrationsFolder: scratch as string });
      expect(await columnCollations(db)).to.not.deep.equal(EXPECTED_COLUMNS);
      await db.query(
        `INSERT INTO coupons (name, total_quantity, issued_count) VALUES ('Old', 10, 2)`,
      );
      await db.query(
        `INSERT INTO issued_coupons (coupon_id, user_id, request_id, issued_at)
         VALUES (1, 'old-a', '1-a-n', now()), (1, 'old-b', '1-b-n', now())`,
      );
      await db.query(
        `INSERT INTO issue_requests
           (request_id, coupon_id, user_id, status, reason, issue_id, requested_at, decided_at)
         VALUES ('1-a-n', 1, 'old-a', 'ISSUED', NULL, 1, now(), now()),
                ('1-b-n', 1, 'old-b', 'ISSUED', NULL, 2, now(), now()),
                ('1-c-n', 1, 'old-c', 'REJECTED', 'SOLD_OUT', NULL, now(), now())`,
      );
      await db.query(`INSERT INTO worker_batches (batch_id, coupon_id, state, size)
                      VALUES ('old-batch', 1, 'COMMITTED', 3)`);
    });

    await migrateDatabase(url);

    await withClient(url, async (db) => {
      expect(await columnCollations(db)).to.deep.equal(EXPECTED_COLUMNS);
      expect(await indexCollations(db)).to.deep.equal(EXPECTED_INDEXES);
      const requests = await db.query<{ request_id: string; user_id: string; status: string }>(
        'SELECT request_id, user_id, status FROM issue_requests ORDER BY request_id',
      );
      expect(requests.rows).to.deep.equal([
        { request_id: '1-a-n', user_id: 'old-a', status: 'ISSUED' },
        { request_id: '1-b-n', user_id: 'old-b', status: 'ISSUED' },
        { request_id: '1-c-n', user_id: 'old-c', status: 'REJECTED' },
      ]);
      const issued = await db.query<{ user_id: string }>(
        'SELECT user_id FROM issued_coupons WHERE coupon_id = 1 ORDER BY id',
      );
      expect(issued.rows.map((r) => r.user_id)).to.deep.equal(['old-a', 'old-b']);
      // The unique indexes still hold after their rebuild.
      const refused = async (query: string) =>
        db.query(query).then(
          () => 'accepted',
          (err: { code?: string }) => err.code,
        );
      expect(
        await refused(`INSERT INTO issued_coupons (coupon_id, user_id, request_id, issued_at)
                       VALUES (1, 'old-a', '1-z-n', now())`),
      ).to.equal('23505');
      expect(
        await refused(`INSERT INTO issue_requests
                         (request_id, coupon_id, user_id, status, reason, issue_id, requested_at, decided_at)
                       VALUES ('1-c-n', 1, 'old-z', 'REJECTED', 'SOLD_OUT', NULL, now(), now())`),
      ).to.equal('23505');
      expect(
        await refused(`INSERT INTO worker_batches (batch_id, coupon_id, state, size)
                       VALUES ('old-batch', 1, 'ABANDONED', 3)`),
      ).to.equal('23505');
    });
  });
});
