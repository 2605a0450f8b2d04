/**
 * Naive baseline: the accept endpoint decided synchronously in PostgreSQL
 * under a pessimistic row lock, no Redis. Each request is one transaction:
 * lock the coupon row (SELECT ... FOR UPDATE), refuse when sold out, insert
 * the issue (the unique key refuses a second one for the same user), bump the
 * counter, commit. Every request for a coupon queues on that one row lock.
 *
 * Same process layout as the service: a node:cluster primary forking HTTP
 * workers that share one port, each with its own pg pool.
 *
 * Start: `npx tsx bench/contenders/naive.ts`
 * Env:   PORT (3200), PROCESSES (os.availableParallelism()), PG_POOL (10, per process),
 *        DATABASE_URL (postgres://postgres@127.0.0.1:5432/coupons_bench_naive)
 *
 * On start the primary creates the database if it is missing and the tables
 * if they are missing (existing rows are kept), then forks the workers. It
 * prints one JSON line to stdout once every worker listens:
 *   {"ready":true,"pid":<primary pid>,"pids":[<worker pids>],"port":3200}
 * SIGTERM or SIGINT to the primary stops the workers and exits 0. Every other
 * message goes to stderr.
 *
 * Routes:
 *   POST /coupons {totalQuantity}                 -> 201 {id}
 *   POST /coupons/:couponId/issue-requests {userId}
 *     -> 202 {requestId, couponId, userId, status:'ISSUED'}
 *     -> 409 {code:'SOLD_OUT'} | 409 {code:'ALREADY_ISSUED'} | 404 {code:'NOT_FOUND'}
 * The issue is decided before answering; it answers 202, not 201, so that
 * status codes compare like for like with the service and the ceiling.
 */
import os from 'node:os';
import express, { type Request, type Response } from 'express';
import pg from 'pg';
import {
  intEnv,
  isPrimary,
  jsonErrors,
  serve,
  superviseWorkers,
  workerChannel,
} from './cluster-server.js';

const PORT = intEnv('PORT', 3200);
const PROCESSES = intEnv('PROCESSES', os.availableParallelism());
const PG_POOL = intEnv('PG_POOL', 10);
const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/coupons_bench_naive';

/** The URL with its password hidden, for messages. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

// ---------------------------------------------------------------- primary

const SCHEMA = `
CREATE TABLE IF NOT EXISTS naive_coupons (
  id bigserial PRIMARY KEY,
  total int NOT NULL,
  issued int NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS naive_issues (
  id bigserial PRIMARY KEY,
  coupon_id bigint NOT NULL,
  user_id text COLLATE "C" NOT NULL, -- compared byte by byte, as in the service's tables
  created_at timestamptz DEFAULT now(),
  UNIQUE (coupon_id, user_id)
);
`;

async function prepareDatabase(): Promise<void> {
  const target = new URL(DATABASE_URL);
  const database = decodeURIComponent(target.pathname.slice(1));
  if (!database) throw new Error(`DATABASE_URL ${describeUrl(DATABASE_URL)} names no database`);

  const admin = new URL(DATABASE_URL);
  admin.pathname = '/postgres';
  const adminClient = new pg.Client({ connectionString: admin.toString() });
  await adminClient.connect();
  try {
    const found = await adminClient.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      database,
    ]);
    if (found.rowCount === 0) {
      try {
        await adminClient.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
        console.error(`naive: created database ${database}`);
      } catch (err) {
        // Someone else created it between the check and the CREATE.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await adminClient.end();
  }

  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(SCHEMA);
  } finally {
    await client.end();
  }
}

async function runPrimary(): Promise<void> {
  try {
    await prepareDatabase();
  } catch (err) {
    console.error(
      `naive: cannot prepare PostgreSQL at ${describeUrl(DATABASE_URL)}: ${(err as Error).message}`,
    );
    process.exit(1);
  }

  superviseWorkers('naive', PROCESSES, PORT);
}

// ----------------------------------------------------------------- worker

const COUPON_ID = /^[1-9][0-9]{0,14}$/;

/** Thrown inside the transaction to roll it back and answer with a status. */
class Refusal {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {}
}

async function runWorker(): Promise<void> {
  const send = workerChannel();

  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max: PG_POOL,
    application_name: 'bench-naive',
  });
  // An idle client losing its connection must not crash the worker.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    send({ type: 'failed', message: `PostgreSQL: ${(err as Error).message}` });
    return;
  }

  const app = express();
  app.set('etag', false);
  app.disable('x-powered-by');
  app.use(express.json({ limit: '16kb' }));

  app.post('/coupons', async (req: Request, res: Response) => {
    const total: unknown = (req.body as { totalQuantity?: unknown } | undefined)?.totalQuantity;
    if (typeof total !== 'number' || !Number.isInteger(total) || total < 1 || total > 2 ** 31 - 1) {
      res.status(400).json({ code: 'VALIDATION_FAILED' });
      return;
    }
    const result = await pool.query<{ id: string }>({
      name: 'naive_create',
      text: 'INSERT INTO naive_coupons (total) VALUES ($1) RETURNING id',
      values: [total],
    });
    res.status(201).json({ id: Number(result.rows[0]!.id) });
  });

  app.post('/coupons/:couponId/issue-requests', async (req: Request, res: Response) => {
    const couponId = String(req.params.couponId);
    const userId: unknown = (req.body as { userId?: unknown } | undefined)?.userId;
    if (!COUPON_ID.test(couponId) || typeof userId !== 'string') {
      res.status(400).json({ code: 'VALIDATION_FAILED' });
      return;
    }

    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch {
      res.status(503).json({ code: 'UNAVAILABLE' });
      return;
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        const coupon = await client.query<{ total: number; issued: number }>({
          name: 'naive_lock',
          text: 'SELECT total, issued FROM naive_coupons WHERE id = $1 FOR UPDATE',
          values: [couponId],
        });
        const row = coupon.rows[0];
        if (!row) throw new Refusal(404, 'NOT_FOUND');
        if (row.issued >= row.total) throw new Refusal(409, 'SOLD_OUT');
        const issue = await client.query<{ id: string }>({
          name: 'naive_insert',
          text:
            'INSERT INTO naive_issues (coupon_id, user_id) VALUES ($1, $2) ' +
            'ON CONFLICT DO NOTHING RETURNING id',
          values: [couponId, userId],
        });
        const issued = issue.rows[0];
        if (!issued) throw new Refusal(409, 'ALREADY_ISSUED');
        await client.query({
          name: 'naive_count',
          text: 'UPDATE naive_coupons SET issued = issued + 1 WHERE id = $1',
          values: [couponId],
        });
        await client.query('COMMIT');
        res.status(202).json({
          requestId: issued.id,
          couponId: Number(couponId),
          userId,
          status: 'ISSUED',
        });
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr as Error;
        }
        if (!(err instanceof Refusal)) throw err;
        res.status(err.status).json({ code: err.code });
      }
    } catch (err) {
      broken ??= err as Error;
      res.status(503).json({ code: 'UNAVAILABLE' });
    } finally {
      // A client whose connection failed is destroyed, not returned to the pool.
      client.release(broken);
    }
  });

  jsonErrors(app);

  serve(app, PORT, send, (server) => {
    server.close();
    setTimeout(() => process.exit(0), 1_000).unref();
    void pool.end().finally(() => process.exit(0));
  });
}

if (isPrimary) void runPrimary();
else void runWorker();
