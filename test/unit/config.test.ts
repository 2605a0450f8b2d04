import { expect } from 'chai';
import { ConfigError, DEVELOPMENT_ADMIN_TOKEN, loadConfig } from '../../src/infra/config.js';

describe('configuration', () => {
  it('when nothing is set, then the documented defaults apply', () => {
    const config = loadConfig({});

    expect(config).to.include({
      port: 3000,
      redisUrl: 'redis://127.0.0.1:6379',
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/coupons',
      batchSize: 2000,
      batchCron: '* * * * * *',
      batchIntervalMs: 100,
      batchLanes: 2,
      workerNice: 10,
      leaseMs: 30000,
      role: 'all',
      logLevel: 'info',
      adminToken: DEVELOPMENT_ADMIN_TOKEN,
      adminTokenIsDefault: true,
      redisCommandTimeoutMs: 1000,
    });
  });

  it('when values are set, then they are parsed and typed', () => {
    const config = loadConfig({
      PORT: '8080',
      BATCH_SIZE: '250',
      ROLE: 'worker',
      BATCH_CRON: '*/2 * * * * *',
      BATCH_LANES: '1',
      WORKER_NICE: '0',
      ADMIN_TOKEN: 'a-long-enough-token',
    });

    expect(config).to.include({
      port: 8080,
      batchSize: 250,
      role: 'worker',
      batchCron: '*/2 * * * * *',
      batchLanes: 1,
      workerNice: 0,
      adminTokenIsDefault: false,
    });
  });

  it('when several values are bad, then one error names every bad variable and its value', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        BATCH_SIZE: '0',
        ROLE: 'both',
        BATCH_CRON: 'every second',
        REDIS_URL: 'localhost:6379',
        BATCH_LANES: '9',
        WORKER_NICE: '-5',
      });
    } catch (err) {
      error = err;
    }

    expect(error).to.be.instanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of [
      'PORT="eighty"',
      'BATCH_SIZE="0"',
      'ROLE="both"',
      'BATCH_CRON="every second"',
      'REDIS_URL="localhost:6379"',
      'BATCH_LANES="9"',
      'WORKER_NICE="-5"',
    ]) {
      expect(message).to.contain(name);
    }
    expect((error as ConfigError).problems).to.have.length(7);
  });

  it('when running in production without ADMIN_TOKEN, then start-up is refused', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).to.throw(
      ConfigError,
      /ADMIN_TOKEN: is required in production/,
    );
  });

  it('when ADMIN_TOKEN is too short, then the error names it without printing the token', () => {
    const error = (() => {
      try {
        loadConfig({ ADMIN_TOKEN: 'short' });
      } catch (err) {
        return err as Error;
      }
      throw new Error('expected a ConfigError');
    })();

    expect(error).to.be.instanceOf(ConfigError);
    expect(error.message).to.match(/ADMIN_TOKEN="\*\*\*": must be at least 16 characters/);
    expect(error.message).not.to.contain('short');
  });

  it('when the stopping and heartbeat settings are unset, set or out of range, then 10 s and 5 s apply, set values are used, and bad ones are named', () => {
    expect(loadConfig({})).to.include({ shutdownTimeoutMs: 10_000, workerHeartbeatStaleMs: 5_000 });
    expect(
      loadConfig({ SHUTDOWN_TIMEOUT_MS: '25000', WORKER_HEARTBEAT_STALE_MS: '3000' }),
    ).to.include({ shutdownTimeoutMs: 25_000, workerHeartbeatStaleMs: 3_000 });
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: '0', WORKER_HEARTBEAT_STALE_MS: '500' }))
      .to.throw(ConfigError)
      .with.property('problems')
      .with.length(2);
  });

  it('when a variable is set to an empty string, then it counts as unset', () => {
    expect(loadConfig({ PORT: '', BATCH_SIZE: '' })).to.include({ port: 3000, batchSize: 2000 });
  });
});
