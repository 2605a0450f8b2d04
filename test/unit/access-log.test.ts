import { expect } from 'chai';
import { accessLog } from '../../src/api/access-log.js';
import { ConfigError, loadConfig } from '../../src/infra/config.js';

const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('access log settings', () => {
  it('when nothing is set, then the access log is off and the sample rate 1 %', () => {
    expect(loadConfig({}).accessLog).to.deep.equal({ mode: 'off', sampleRate: 0.01 });
  });

  it('when ACCESS_LOG and its rate are set, then they are parsed', () => {
    expect(
      loadConfig({ ACCESS_LOG: 'sampled', ACCESS_LOG_SAMPLE_RATE: '0.25' }).accessLog,
    ).to.deep.equal({ mode: 'sampled', sampleRate: 0.25 });
  });

  for (const env of [
    { ACCESS_LOG: 'some' },
    { ACCESS_LOG_SAMPLE_RATE: '1.5' },
    { ACCESS_LOG_SAMPLE_RATE: '-0.1' },
    { ACCESS_LOG_SAMPLE_RATE: 'often' },
  ]) {
    it(`when ${JSON.stringify(env)}, then start-up is refused naming it`, () => {
      expect(() => loadConfig(env))
        .to.throw(ConfigError)
        .with.property('message')
        .that.includes(Object.keys(env)[0] as string);
    });
  }

  it('when the access log is on but LOG_LEVEL drops info lines, then start-up is refused', () => {
    expect(() => loadConfig({ ACCESS_LOG: 'all', LOG_LEVEL: 'warn' }))
      .to.throw(ConfigError)
      .with.property('message')
      .that.includes('ACCESS_LOG=')
      .and.includes('LOG_LEVEL=warn');
  });

  it('when it is off, or sampled at rate 0, then no middleware is added to the app', () => {
    expect(accessLog({ mode: 'off', sampleRate: 1 }, logger)).to.equal(undefined);
    expect(accessLog({ mode: 'sampled', sampleRate: 0 }, logger)).to.equal(undefined);
    expect(accessLog({ mode: 'all', sampleRate: 0 }, logger)).to.be.a('function');
  });
});
