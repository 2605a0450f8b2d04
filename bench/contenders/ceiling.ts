/**
 * Reference ceiling: what Node + Express 5 + ioredis reach on the accept
 * endpoint with no logic at all. Same process layout as the service (a
 * node:cluster primary forking HTTP workers that share one port), same body
 * parser, one EVALSHA per request, and nothing else: no validation beyond the
 * type of userId, no rate limits, no idempotency, no PostgreSQL.
 *
 * Start: `npx tsx bench/contenders/ceiling.ts`
 * Env:   PORT (3100), PROCESSES (os.availableParallelism()),
 *        REDIS_URL (redis://127.0.0.1:6379), REDIS_KEY_PREFIX (bench:)
 *
 * The primary prints one JSON line to stdout once every worker listens:
 *   {"ready":true,"pid":<primary pid>,"pids":[<worker pids>],"port":3100}
 * SIGTERM or SIGINT to the primary stops the workers and exits 0. Every other
 * message goes to stderr.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import os from 'node:os';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Redis } from 'ioredis';

const PORT = intEnv('PORT', 3100);
const PROCESSES = intEnv('PROCESSES', os.availableParallelism());
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_KEY_PREFIX = process.env.REDIS_KEY_PREFIX ?? 'bench:';

/** Sent by a worker to the primary. */
type WorkerMessage = { type: 'listening' } | { type: 'failed'; message: string };

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (name === 'PORT' ? 0 : 1)) {
    console.error(`${name}=${raw} is not a valid value`);
    process.exit(1);
  }
  return value;
}

// ---------------------------------------------------------------- primary

function runPrimary(): void {
  const workers = new Map<number, Worker>();
  const listening = new Set<number>();
  let stopping = false;

  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    const alive = [...workers.values()].filter((w) => !w.isDead());
    if (alive.length === 0) process.exit(code);
    let left = alive.length;
    for (const worker of alive) {
      worker.once('exit', () => {
        left -= 1;
        if (left === 0) process.exit(code);
      });
      worker.process.kill('SIGTERM');
    }
    // A worker stuck on a socket must not keep the primary alive.
    setTimeout(() => {
      for (const worker of alive) if (!worker.isDead()) worker.process.kill('SIGKILL');
      process.exit(code);
    }, 5_000).unref();
  };

  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));

  for (let i = 0; i < PROCESSES; i += 1) {
    const worker = cluster.fork();
    workers.set(worker.id, worker);
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'failed') {
        console.error(`ceiling: worker ${worker.process.pid} failed: ${message.message}`);
        stop(1);
      } else if (message.type === 'listening') {
        listening.add(worker.id);
        if (listening.size === PROCESSES && !stopping) {
          const pids = [...workers.values()].map((w) => w.process.pid);
          process.stdout.write(
            `${JSON.stringify({ ready: true, pid: process.pid, pids, port: PORT })}\n`,
          );
        }
      }
    });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      console.error(`ceiling: worker ${worker.process.pid} exited (${signal ?? code})`);
      stop(1);
    });
  }
}

// ----------------------------------------------------------------- worker

interface CeilingRedis extends Redis {
  ceilingAccept(key: string, score: number, userId: string): Promise<number>;
}

async function runWorker(): Promise<void> {
  const send = (message: WorkerMessage) => process.send?.(message);
  // Ctrl-C reaches the whole process group; only the primary decides when to stop.
  process.on('SIGINT', () => undefined);
  // Orphaned (primary killed with SIGKILL): do not linger.
  process.on('disconnect', () => process.exit(0));

  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectionName: 'bench-ceiling',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 1_000,
  }) as CeilingRedis;
  redis.on('error', () => undefined);
  redis.defineCommand('ceilingAccept', {
    numberOfKeys: 1,
    lua: "return redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])",
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    send({ type: 'failed', message: `Redis at ${REDIS_URL}: ${(err as Error).message}` });
    return;
  }

  const app = express();
  app.set('etag', false);
  app.disable('x-powered-by');
  app.use(express.json({ limit: '16kb' }));

  app.post('/coupons/:couponId/issue-requests', async (req: Request, res: Response) => {
    const userId: unknown = (req.body as { userId?: unknown } | undefined)?.userId;
    if (typeof userId !== 'string') {
      res.status(400).json({ code: 'VALIDATION_FAILED' });
      return;
    }
    const couponId = String(req.params.couponId);
    try {
      await redis.ceilingAccept(
        `${REDIS_KEY_PREFIX}ceiling:{${couponId}}:queue`,
        Date.now(),
        userId,
      );
    } catch {
      res.status(503).json({ code: 'UNAVAILABLE' });
      return;
    }
    res.status(202).json({
      requestId: randomUUID(),
      couponId: Number(couponId),
      userId,
      status: 'PENDING',
    });
  });

  app.use((err: { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status ?? 500;
    res.status(status).json({ code: status < 500 ? 'BAD_REQUEST' : 'ERROR' });
  });

  const server: Server = app.listen(PORT, (err?: Error) => {
    if (err) send({ type: 'failed', message: `cannot listen on ${PORT}: ${err.message}` });
    else send({ type: 'listening' });
  });

  process.on('SIGTERM', () => {
    server.close();
    redis.disconnect();
    process.exit(0);
  });
}

if (cluster.isPrimary) runPrimary();
else void runWorker();
