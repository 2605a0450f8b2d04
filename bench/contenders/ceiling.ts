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
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import express, { type Request, type Response } from 'express';
import { Redis } from 'ioredis';
import {
  intEnv,
  isPrimary,
  jsonErrors,
  serve,
  superviseWorkers,
  workerChannel,
} from './cluster-server.js';

const PORT = intEnv('PORT', 3100);
const PROCESSES = intEnv('PROCESSES', os.availableParallelism());
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_KEY_PREFIX = process.env.REDIS_KEY_PREFIX ?? 'bench:';

// ---------------------------------------------------------------- primary

function runPrimary(): void {
  superviseWorkers('ceiling', PROCESSES, PORT);
}

// ----------------------------------------------------------------- worker

interface CeilingRedis extends Redis {
  ceilingAccept(key: string, score: number, userId: string): Promise<number>;
}

async function runWorker(): Promise<void> {
  const send = workerChannel();

  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectionName: 'bench-ceiling',
    // The service's API connection pipelines each event-loop turn's commands; the ceiling
    // gets the same client settings, so the two differ by the service's logic alone.
    enableAutoPipelining: true,
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

  jsonErrors(app);

  serve(app, PORT, send, (server) => {
    server.close();
    redis.disconnect();
    process.exit(0);
  });
}

if (isPrimary) runPrimary();
else void runWorker();
