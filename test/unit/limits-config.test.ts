import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/infra/config.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('config: rate limits, TRUST_PROXY and CORS_ORIGINS', () => {
  it('when nothing is set, then every limit is on with its default, no proxy is trusted and no origin allowed', () => {
    const config = loadConfig({});

    expect(config.rateLimits).to.deep.equal({
      ip: { points: 600, windowS: 10 },
      accept: { points: 10, windowS: 10 },
      status: { points: 60, windowS: 10 },
      authFailure: { points: 10, windowS: 60 },
    });
    expect(config.trustProxy).to.equal(false);
    expect(config.corsOrigins).to.deep.equal([]);
  });

  it('when RATE_LIMIT_ENABLED=false, then no limit is in force; when one limit has 0 points, then only that one is off', () => {
    expect(loadConfig({ RATE_LIMIT_ENABLED: 'false' }).rateLimits).to.equal(undefined);
    const one = loadConfig({ RATE_LIMIT_STATUS_POINTS: '0' }).rateLimits;
    expect(one?.status).to.equal(undefined);
    expect(one?.ip).to.deep.equal({ points: 600, windowS: 10 });
  });

  it('when TRUST_PROXY is a hop count, a list of addresses and CIDRs, or true, then Express gets it in that form', () => {
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).to.equal(2);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).to.equal(true);
    expect(
      loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8,192.0.2.7' }).trustProxy,
    ).to.deep.equal(['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.7']);
  });

  it('when TRUST_PROXY, CORS_ORIGINS or a limit is malformed, then start-up names each', () => {
    const found = problems({
      TRUST_PROXY: '10.0.0.0/33,proxy.example',
      CORS_ORIGINS: 'https://shop.example.com/,*',
      RATE_LIMIT_IP_POINTS: '-1',
      RATE_LIMIT_ENABLED: 'yes',
    });

    expect(found.map((p) => p.split('=')[0]).sort()).to.deep.equal([
      'CORS_ORIGINS',
      'RATE_LIMIT_ENABLED',
      'RATE_LIMIT_IP_POINTS',
      'TRUST_PROXY',
    ]);
  });

  it('when CORS_ORIGINS lists origins, then they are kept exactly, spaces around commas dropped', () => {
    expect(
      loadConfig({ CORS_ORIGINS: 'https://shop.example.com, http://localhost:5173' }).corsOrigins,
    ).to.deep.equal(['https://shop.example.com', 'http://localhost:5173']);
  });
});
