import { expect } from 'chai';
import { ConfigError, DEVELOPMENT_ADMIN_TOKEN, loadConfig } from '../../src/infra/config.js';

/** The ConfigError loading this environment throws. */
/** A JWT_SECRET long enough (32 bytes and more). */
const SECRET = 'a-jwt-secret-of-at-least-32-bytes-0123';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

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
      heapGrowingPercent: 150,
      leaseMs: 30000,
      role: 'all',
      logLevel: 'info',
      adminToken: DEVELOPMENT_ADMIN_TOKEN,
      adminTokenIsDefault: true,
      redisCommandTimeoutMs: 1000,
      host: '127.0.0.1',
    });
    expect(config.http).to.deep.equal({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 10_000,
      maxConnections: 10_000,
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
      HEAP_GROWING_PERCENT: '0',
      ADMIN_TOKEN: 'a-long-enough-token',
    });

    expect(config).to.include({
      port: 8080,
      batchSize: 250,
      role: 'worker',
      batchCron: '*/2 * * * * *',
      batchLanes: 1,
      workerNice: 0,
      heapGrowingPercent: 0,
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
        HEAP_GROWING_PERCENT: '301',
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
      'HEAP_GROWING_PERCENT="301"',
    ]) {
      expect(message).to.contain(name);
    }
    expect((error as ConfigError).problems).to.have.length(8);
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

  it('when the HTTP settings are set, then they are parsed', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      ADMIN_TOKEN: 'a-long-enough-token',
      HTTP_HEADERS_TIMEOUT_MS: '2000',
      HTTP_REQUEST_TIMEOUT_MS: '5000',
      HTTP_MAX_CONNECTIONS: '50',
    });

    expect(config.host).to.equal('0.0.0.0');
    expect(config.http).to.deep.equal({
      headersTimeoutMs: 2000,
      requestTimeoutMs: 5000,
      maxConnections: 50,
    });
  });

  it('when the headers timeout exceeds the request timeout, then start-up is refused naming both', () => {
    const error = configError({ HTTP_HEADERS_TIMEOUT_MS: '6000', HTTP_REQUEST_TIMEOUT_MS: '5000' });

    expect(error.message).to.match(
      /HTTP_HEADERS_TIMEOUT_MS="6000": must not exceed HTTP_REQUEST_TIMEOUT_MS \(5000\)/,
    );
  });

  it('when HOST is not an address or a host name, then start-up is refused', () => {
    expect(configError({ HOST: 'http://0.0.0.0' }).message).to.contain('HOST="http://0.0.0.0"');
  });

  describe('the development token and the listening address', () => {
    const TOKEN = 'a-long-enough-token';
    const cases: [string, Record<string, string>, 'starts' | RegExp][] = [
      ['nothing is set (loopback by default)', {}, 'starts'],
      ['HOST=127.0.0.1', { HOST: '127.0.0.1' }, 'starts'],
      ['HOST=127.0.0.2 (all of 127/8 is loopback)', { HOST: '127.0.0.2' }, 'starts'],
      ['HOST=::1', { HOST: '::1' }, 'starts'],
      ['HOST=localhost', { HOST: 'localhost' }, 'starts'],
      ['HOST=0.0.0.0 and ADMIN_TOKEN is set', { HOST: '0.0.0.0', ADMIN_TOKEN: TOKEN }, 'starts'],
      [
        'HOST=0.0.0.0 for a worker, which listens on nothing',
        { HOST: '0.0.0.0', ROLE: 'worker' },
        'starts',
      ],
      ['HOST=0.0.0.0 without ADMIN_TOKEN', { HOST: '0.0.0.0' }, /ADMIN_TOKEN: .*HOST="0\.0\.0\.0"/],
      ['HOST=:: without ADMIN_TOKEN', { HOST: '::' }, /HOST="::" is not a loopback address/],
      ['HOST=10.1.2.3 without ADMIN_TOKEN', { HOST: '10.1.2.3' }, /HOST="10\.1\.2\.3"/],
      [
        'HOST=coupons.internal without ADMIN_TOKEN',
        { HOST: 'coupons.internal' },
        /HOST="coupons\.internal"/,
      ],
      ['HOST=::ffff:10.0.0.1 without ADMIN_TOKEN', { HOST: '::ffff:10.0.0.1' }, /HOST=/],
      [
        'ROLE=api and HOST=0.0.0.0 without ADMIN_TOKEN',
        { ROLE: 'api', HOST: '0.0.0.0' },
        /ADMIN_TOKEN/,
      ],
      [
        'NODE_ENV=production on loopback without ADMIN_TOKEN',
        { NODE_ENV: 'production', JWT_SECRET: SECRET },
        /ADMIN_TOKEN: is required in production/,
      ],
      [
        'NODE_ENV=production and HOST=0.0.0.0 without ADMIN_TOKEN',
        { NODE_ENV: 'production', HOST: '0.0.0.0', JWT_SECRET: SECRET },
        /ADMIN_TOKEN: is required in production/,
      ],
    ];
    for (const [when, env, expected] of cases) {
      if (expected === 'starts') {
        it(`when ${when}, then the configuration loads`, () => {
          expect(() => loadConfig(env)).not.to.throw();
        });
      } else {
        it(`when ${when}, then start-up is refused naming ADMIN_TOKEN and what to set`, () => {
          const error = configError(env);

          expect(error.message).to.match(expected);
          expect(error.problems).to.have.length(1);
          if (env.NODE_ENV !== 'production') {
            expect(error.message).to.contain('set ADMIN_TOKEN, or HOST=127.0.0.1');
          }
        });
      }
    }
  });

  describe('secrets in error messages', () => {
    const cases: [string, Record<string, string>, string][] = [
      [
        'a REDIS_URL with the wrong scheme',
        { REDIS_URL: 'http://admin:hunter2@redis:6379' },
        'hunter2',
      ],
      ['a REDIS_URL without its scheme', { REDIS_URL: 'admin:hunter2@redis:6379' }, 'hunter2'],
      [
        'a REDIS_URL with a mistyped scheme',
        { REDIS_URL: 'redis//:hunter2@redis:6379' },
        'hunter2',
      ],
      [
        'a REDIS_URL whose password holds @ and :',
        { REDIS_URL: 'redis:/admin:hun@ter:2@redis:6379' },
        'hun@ter:2',
      ],
      [
        'a DATABASE_URL with the wrong scheme',
        { DATABASE_URL: 'mysql://app:s3cret@db/coupons' },
        's3cret',
      ],
      [
        'a DATABASE_URL in key=value form',
        { DATABASE_URL: 'host=db user=app password=s3cret dbname=coupons' },
        's3cret',
      ],
      ['a short ADMIN_TOKEN', { ADMIN_TOKEN: 'tiny-secret' }, 'tiny-secret'],
    ];
    for (const [when, env, secret] of cases) {
      it(`when ${when} is refused, then the message names the variable and never holds the password`, () => {
        const error = configError(env);
        const name = Object.keys(env)[0] as string;

        expect(error.message).to.contain(`${name}=`);
        expect(error.message).not.to.contain(secret);
      });
    }

    it('when a malformed URL is refused, then what it holds besides the password is shown', () => {
      expect(configError({ REDIS_URL: 'http://admin:hunter2@redis:6379' }).message).to.contain(
        'REDIS_URL="http://admin:***@redis:6379"',
      );
    });
  });

  describe('identity (JWT settings)', () => {
    it('when NODE_ENV=production has neither JWT_SECRET nor JWT_JWKS_URL, then start-up is refused naming both', () => {
      const error = configError({ NODE_ENV: 'production', ADMIN_TOKEN: 'a'.repeat(16) });
      expect(error.problems).to.have.length(1);
      expect(error.message).to.match(/JWT_SECRET: is required in production \(or JWT_JWKS_URL\)/);
    });

    it('when NODE_ENV=production runs only the worker (ROLE=worker), then no identity is needed', () => {
      const config = loadConfig({
        NODE_ENV: 'production',
        ADMIN_TOKEN: 'a'.repeat(16),
        ROLE: 'worker',
      });
      expect(config.identity).to.equal(null);
    });

    it('when no JWT setting is given outside production, then identity is off', () => {
      expect(loadConfig({}).identity).to.equal(null);
      expect(loadConfig({ NODE_ENV: 'test' }).identity).to.equal(null);
    });

    it('when JWT_SECRET is shorter than 32 bytes, then start-up is refused without printing it', () => {
      const error = configError({ JWT_SECRET: 'short-secret' });
      expect(error.message).to.match(/JWT_SECRET="\*\*\*": must be at least 32 bytes/);
      expect(error.message).not.to.contain('short-secret');
    });

    it('when both JWT_SECRET and JWT_JWKS_URL are set, then start-up is refused', () => {
      const error = configError({ JWT_SECRET: SECRET, JWT_JWKS_URL: 'https://id.example/jwks' });
      expect(error.message).to.match(/JWT_JWKS_URL.*not both/);
    });

    it('when JWT_JWKS_URL is not an http(s) URL, then start-up is refused', () => {
      expect(configError({ JWT_JWKS_URL: 'ftp://id.example/jwks' }).message).to.match(
        /JWT_JWKS_URL/,
      );
    });

    it('when JWT settings are given, then the identity settings carry them with their defaults', () => {
      expect(
        loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: 'a'.repeat(16), JWT_SECRET: SECRET })
          .identity,
      ).to.deep.equal({
        key: { kind: 'secret', secret: SECRET },
        clockToleranceSec: 5,
        rolesClaim: 'roles',
        operatorRole: 'operator',
      });
      expect(
        loadConfig({
          JWT_JWKS_URL: 'https://id.example/jwks',
          JWT_ISSUER: 'https://id.example',
          JWT_AUDIENCE: 'coupons',
          JWT_CLOCK_TOLERANCE_S: '30',
          JWT_ROLES_CLAIM: 'https://example.com/roles',
          JWT_OPERATOR_ROLE: 'coupon-admin',
        }).identity,
      ).to.deep.equal({
        key: { kind: 'jwks', url: 'https://id.example/jwks' },
        issuer: 'https://id.example',
        audience: 'coupons',
        clockToleranceSec: 30,
        rolesClaim: 'https://example.com/roles',
        operatorRole: 'coupon-admin',
      });
    });

    it('when JWT_CLOCK_TOLERANCE_S is above 300, then start-up is refused', () => {
      expect(configError({ JWT_SECRET: SECRET, JWT_CLOCK_TOLERANCE_S: '301' }).message).to.match(
        /JWT_CLOCK_TOLERANCE_S/,
      );
    });
  });
});
