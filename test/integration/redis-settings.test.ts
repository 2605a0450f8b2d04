import { expect } from 'chai';
import { Redis } from 'ioredis';
import sinon from 'sinon';
import { checkRedisSettings } from '../../src/infra/redis/settings-check.js';
import { StartupError } from '../../src/infra/startup-error.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';

describe('the Redis settings the guarantees rely on', () => {
  let server: PrivateRedis;
  let redis: Redis;

  beforeEach(async () => {
    server = await startPrivateRedis({ appendOnly: true });
    redis = new Redis(server.url, { lazyConnect: true });
    await redis.connect();
  });
  afterEach(async () => {
    redis.disconnect();
    await server.stop();
  });

  const logger = () => ({ info: sinon.spy(), warn: sinon.spy(), error: sinon.spy() });

  it('when Redis never evicts and persists, then start-up goes on without a warning', async () => {
    const log = logger();

    await checkRedisSettings(redis, 'refuse', log);

    expect(log.warn.called).to.equal(false);
  });

  it('when Redis may evict keys and the check refuses, then start-up stops with a message naming the policy and the fix', async () => {
    await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');

    const error = await checkRedisSettings(redis, 'refuse', logger()).catch((e: unknown) => e);

    expect(error).to.be.instanceOf(StartupError);
    expect((error as Error).message)
      .to.contain('"allkeys-lru"')
      .and.contain('noeviction');
  });

  it('when Redis may evict keys and the check only warns, then start-up goes on with a warning', async () => {
    await redis.config('SET', 'maxmemory-policy', 'volatile-lru');
    const log = logger();

    await checkRedisSettings(redis, 'warn', log);

    expect(log.warn.calledWithMatch(/maxmemory-policy is "volatile-lru"/)).to.equal(true);
  });

  it('when Redis does not persist, then a warning says that a restart loses waiting requests', async () => {
    await redis.config('SET', 'appendonly', 'no');
    const log = logger();

    await checkRedisSettings(redis, 'refuse', log);

    expect(log.warn.calledWithMatch(/appendonly\) is off/)).to.equal(true);
  });
});
