import { expect } from 'chai';
import { startHarness, type Harness } from '../support/harness.js';
import { http, type HttpResult } from '../support/http.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { deploymentOf, ProcessFleet, type ServiceProcess } from '../support/processes.js';

/**
 * Liveness (/healthz: the process answers) and readiness (/readyz: Redis,
 * PostgreSQL, migrations, a batch worker's heartbeat, not stopping), seen
 * from an API process while real worker processes freeze, die and stop.
 */

interface Readiness {
  readonly status: string;
  readonly failing?: string[];
}

interface Health {
  readonly status: string;
  readonly failing?: string[];
  readonly pendingMigrations?: number;
  readonly workerHeartbeat?: { worker: string; ageMs: number; fresh: boolean } | null;
}

/** The API processes here call a worker stale after this (workers beat every second). */
const STALE_MS = 2_000;

/** Polls a path until the answer passes the check; returns that answer. */
async function until<T>(
  baseUrl: string,
  path: string,
  check: (res: HttpResult<T>) => boolean,
  timeoutMs = 30_000,
): Promise<HttpResult<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: HttpResult<T> | undefined;
  for (;;) {
    last = await http<T>(baseUrl, 'GET', path);
    if (check(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(
        `GET ${path} did not turn as expected within ${timeoutMs} ms; last: ${last.status} ${JSON.stringify(last.body)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const ready = (res: HttpResult<Readiness>) => res.status === 200 && res.body.status === 'ready';
const notReadyFor = (what: string) => (res: HttpResult<Readiness>) =>
  res.status === 503 && (res.body.failing ?? []).includes(what);

describe('readiness: /healthz, /readyz and the worker heartbeat', function () {
  this.timeout(90_000);

  describe('an API process and a worker process', () => {
    let h: Harness;
    let fleet: ProcessFleet;
    let api: ServiceProcess;
    let worker: ServiceProcess;

    beforeEach(async () => {
      // The harness's own worker must not beat: the worker process is the only one.
      h = await startHarness({ heartbeat: false });
      fleet = new ProcessFleet(deploymentOf(h));
      [api, worker] = await Promise.all([
        fleet.start({
          name: 'api',
          role: 'api',
          env: { WORKER_HEARTBEAT_STALE_MS: String(STALE_MS) },
        }),
        fleet.start({ name: 'worker', role: 'worker' }),
      ]);
      await until(api.baseUrl, '/readyz', ready);
    });
    afterEach(async function () {
      if (this.currentTest?.state === 'failed') console.error(fleet.dump());
      try {
        await fleet.stopAll();
      } finally {
        await h.cleanup();
      }
    });

    /** The worker process's beat in Redis (ms, Redis's clock), null when it has none. */
    async function beatOf(proc: ServiceProcess): Promise<number | null> {
      const members = await h.container.redis.zrange(
        h.container.keys.workerHeartbeats(),
        '0',
        '-1',
        'WITHSCORES',
      );
      for (let i = 0; i < members.length; i += 2) {
        if (members[i]?.endsWith(`:${proc.pid}`)) return Number(members[i + 1]);
      }
      return null;
    }

    it('when the worker process is frozen (SIGSTOP), then /readyz answers 503 naming the worker while /healthz answers 200, /health shows how old the beat is, and after SIGCONT it is ready again', async () => {
      const healthy = await http<Health>(api.baseUrl, 'GET', '/health');
      expect(healthy.status).to.equal(200);
      expect(healthy.body.workerHeartbeat?.worker).to.match(new RegExp(`:${worker.pid}$`));
      expect(healthy.body.pendingMigrations).to.equal(0);

      worker.signal('SIGSTOP');
      await worker.waitStopped();
      const frozenBeat = await beatOf(worker);
      expect(frozenBeat).to.be.a('number');

      const unready = await until(api.baseUrl, '/readyz', notReadyFor('worker'));
      expect(unready.body).to.deep.equal({ status: 'not ready', failing: ['worker'] });
      const live = await http(api.baseUrl, 'GET', '/healthz');
      expect([live.status, live.body]).to.deep.equal([200, { status: 'ok' }]);
      const health = await http<Health>(api.baseUrl, 'GET', '/health');
      expect(health.status).to.equal(503);
      expect(health.body.status).to.equal('degraded');
      expect(health.body.failing).to.deep.equal(['worker']);
      expect(health.body.workerHeartbeat?.fresh).to.equal(false);
      expect(health.body.workerHeartbeat?.ageMs).to.be.greaterThan(STALE_MS);
      // Frozen, it beat no more.
      expect(await beatOf(worker)).to.equal(frozenBeat);

      worker.signal('SIGCONT');
      await until(api.baseUrl, '/readyz', ready);
      expect(await beatOf(worker)).to.be.greaterThan(frozenBeat as number);
    });

    it('when the worker process is killed (SIGKILL), then /readyz answers 503 naming the worker, its last beat going stale in Redis', async () => {
      worker.signal('SIGKILL');
      await worker.waitForExit();

      await until(api.baseUrl, '/readyz', notReadyFor('worker'));
      const health = await http<Health>(api.baseUrl, 'GET', '/health');
      expect(health.body.workerHeartbeat?.worker).to.match(new RegExp(`:${worker.pid}$`));
      expect(health.body.workerHeartbeat?.fresh).to.equal(false);
      expect(await beatOf(worker)).to.be.a('number');

      // Another worker makes the service ready again.
      await fleet.start({ name: 'replacement', role: 'worker' });
      await until(api.baseUrl, '/readyz', ready);
    });

    it('when the worker process stops on SIGTERM and none replaces it, then its last beat stays in Redis and ages, and /readyz answers 503 naming the worker once it is stale', async () => {
      worker.signal('SIGTERM');
      expect(await worker.waitForExit()).to.deep.equal({ code: 0, signal: null });
      const lastBeat = await beatOf(worker);
      expect(lastBeat).to.be.a('number');

      const res = await until(api.baseUrl, '/readyz', notReadyFor('worker'));
      expect(res.body).to.deep.equal({ status: 'not ready', failing: ['worker'] });
      expect(await beatOf(worker)).to.equal(lastBeat);
    });
  });

  describe('in one process', () => {
    let h: Harness;

    beforeEach(async () => {
      h = await startHarness();
      await until(h.baseUrl, '/readyz', ready);
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('when the process begins to stop, then /readyz answers 503 at once while /healthz still answers 200', async () => {
      h.container.beginShutdown();

      const res = await http<Readiness>(h.baseUrl, 'GET', '/readyz');
      expect([res.status, res.body]).to.deep.equal([
        503,
        { status: 'not ready', failing: ['shutting-down'] },
      ]);
      expect(res.headers.get('cache-control')).to.equal('no-store');
      const live = await http(h.baseUrl, 'GET', '/healthz');
      expect([live.status, live.body]).to.deep.equal([200, { status: 'ok' }]);
    });

    it('when the database lacks the latest migration, then /readyz answers 503 naming the migrations and /health counts what is missing', async () => {
      await h.container.pool.query(
        'DELETE FROM drizzle.__drizzle_migrations WHERE id = (SELECT max(id) FROM drizzle.__drizzle_migrations)',
      );

      const res = await http<Readiness>(h.baseUrl, 'GET', '/readyz');
      expect([res.status, res.body]).to.deep.equal([
        503,
        { status: 'not ready', failing: ['migrations'] },
      ]);
      const health = await http<Health>(h.baseUrl, 'GET', '/health');
      expect(health.status).to.equal(503);
      expect(health.body.pendingMigrations).to.equal(1);
    });

    it('when /healthz, /readyz or /health gets a method other than GET, then it answers 405', async () => {
      for (const path of ['/healthz', '/readyz', '/health']) {
        const res = await http(h.baseUrl, 'POST', path, { body: {} });
        expect(res.status, path).to.equal(405);
        expect(res.contentType).to.match(/^application\/problem\+json/);
      }
      const unknown = await http(h.baseUrl, 'GET', '/readyz/x');
      expect(unknown.status).to.equal(404);
    });
  });

  describe('with a private Redis', () => {
    let redis: PrivateRedis | undefined;
    let h: Harness | undefined;

    afterEach(async () => {
      redis?.thaw();
      await h?.cleanup();
      await redis?.stop();
      h = undefined;
      redis = undefined;
    });

    it('when Redis stalls (SIGSTOP), then /healthz still answers 200 (it touches no dependency) and /readyz answers 503 naming Redis', async () => {
      redis = await startPrivateRedis();
      h = await startHarness({ env: { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '1000' } });
      await until(h.baseUrl, '/readyz', ready);

      redis.freeze();
      const live = await http(h.baseUrl, 'GET', '/healthz');
      const res = await http<Readiness>(h.baseUrl, 'GET', '/readyz');
      redis.thaw();

      expect([live.status, live.body]).to.deep.equal([200, { status: 'ok' }]);
      expect(res.status).to.equal(503);
      expect(res.body.failing).to.deep.equal(['redis']);
      await until(h.baseUrl, '/readyz', ready);
    });
  });
});
