/**
 * The container's health check (the Dockerfile's HEALTHCHECK; `node
 * dist/scripts/healthcheck.js`): exits 0 when this container's service is
 * alive, 1 with one line saying why when not. Node's fetch, no curl: the
 * runtime image has none.
 *
 * - ROLE=api or all: GET /healthz on this container's PORT. Liveness only: it
 *   touches no dependency, so an outage of Redis or PostgreSQL never marks the
 *   API processes unhealthy.
 * - ROLE=worker listens on no port: its own beat in Redis (written every
 *   second from its own timer, under "<host name>:<pid>") must be fresher than
 *   WORKER_HEARTBEAT_STALE_MS. A frozen or blocked worker stops beating; while
 *   Redis is down every worker fails this check, and the line says so.
 */
import { hostname } from 'node:os';
import { ConfigError, loadConfig } from '../src/infra/config.js';
import { connectRedis } from '../src/infra/redis/client.js';
import { RedisKeys } from '../src/infra/redis/keys.js';
import { StartupError } from '../src/infra/startup-error.js';

const TIMEOUT_MS = 2_000;

async function apiAlive(port: number, host: string): Promise<string | undefined> {
  // The service listens on every interface in a container; ask it over loopback.
  const target = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/healthz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    return res.ok ? undefined : `${url} answered ${res.status}`;
  } catch (err) {
    return `${url} did not answer (${(err as Error).message})`;
  }
}

async function workerAlive(config: ReturnType<typeof loadConfig>): Promise<string | undefined> {
  const redis = await connectRedis(config.redisUrl, {
    name: 'coupon-issuance:healthcheck',
    commandTimeoutMs: TIMEOUT_MS,
  });
  try {
    const key = new RedisKeys(config.redisKeyPrefix).workerHeartbeats();
    const [beats, [seconds, micros]] = await Promise.all([
      redis.zrange(key, '0', '-1', 'WITHSCORES'),
      redis.time(),
    ]);
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const mine = `${hostname()}:`;
    let freshest = Number.NEGATIVE_INFINITY;
    for (let i = 0; i + 1 < beats.length; i += 2) {
      if (beats[i]?.startsWith(mine)) freshest = Math.max(freshest, Number(beats[i + 1]));
    }
    if (freshest === Number.NEGATIVE_INFINITY) return `no worker on ${hostname()} has beaten`;
    const ageMs = now - freshest;
    return ageMs <= config.workerHeartbeatStaleMs
      ? undefined
      : `the worker on ${hostname()} last beat ${ageMs} ms ago (WORKER_HEARTBEAT_STALE_MS=${config.workerHeartbeatStaleMs})`;
  } finally {
    redis.disconnect();
  }
}

try {
  const config = loadConfig();
  const problem =
    config.role === 'worker' ? await workerAlive(config) : await apiAlive(config.port, config.host);
  if (problem) {
    console.error(`unhealthy: ${problem}`);
    process.exit(1);
  }
  process.exit(0);
} catch (err) {
  console.error(
    `unhealthy: ${err instanceof ConfigError || err instanceof StartupError ? err.message : String(err)}`,
  );
  process.exit(1);
}
