import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = join(import.meta.dirname, '..', '..');
const STUBS = join(ROOT, 'test', 'support', 'k6-stubs.mjs');

interface Scenario {
  executor: string;
  exec: string;
  rate?: number;
  timeUnit?: string;
  duration?: string;
  stages?: { duration: string; target: number }[];
}

interface Loaded {
  options: { scenarios: Record<string, Scenario>; thresholds: Record<string, string[]> };
  functions: string[];
}

/** Imports a k6 script in a child Node process with k6's modules stood in for. */
function load(script: string, env: Record<string, string> = {}): Loaded {
  const url = pathToFileURL(join(ROOT, 'k6', script)).href;
  const code =
    `globalThis.__ENV = ${JSON.stringify(env)};` +
    `const m = await import(${JSON.stringify(url)});` +
    'console.log(JSON.stringify({ options: m.options, functions: Object.keys(m).filter((k) => typeof m[k] === "function") }));';
  const run = spawnSync(
    process.execPath,
    ['--import', pathToFileURL(STUBS).href, '--input-type=module', '-e', code],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`${script} did not load:\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() as string) as Loaded;
}

describe('the k6 scripts', () => {
  for (const script of ['constant-rate.js', 'ramping.js', 'lib.js']) {
    it(`when ${script} is checked by node --check, then it is valid JavaScript`, () => {
      const run = spawnSync(process.execPath, ['--check', join(ROOT, 'k6', script)], {
        encoding: 'utf8',
      });
      expect(run.status, run.stderr).to.equal(0);
    });
  }

  it('when constant-rate.js loads with its defaults, then it is the published scenario: 2,800 requests/s for 60 s against 100,000 coupons, with thresholds on failures and accept latency', () => {
    const { options, functions } = load('constant-rate.js');

    expect(options.scenarios.accept).to.include({
      executor: 'constant-arrival-rate',
      rate: 2800,
      timeUnit: '1s',
      duration: '60s',
    });
    expect(options.thresholds.http_req_failed).to.deep.equal(['rate<0.01']);
    expect(options.thresholds['http_req_duration{scenario:accept}']).to.deep.equal([
      'p(95)<10',
      'p(99)<30',
    ]);
    // 2,800/s for 60 s is 168,000 requests for 100,000 coupons: the event must sell out exactly.
    expect(options.thresholds.coupon_issued_count).to.deep.equal(['value==100000']);
    expect(options.thresholds.settled).to.deep.equal(['rate==1']);
    for (const s of Object.values(options.scenarios)) expect(functions).to.include(s.exec);
  });

  it('when ramping.js loads with its defaults, then it ramps to 50 and then 100 virtual users, with thresholds on failures and latency, and every scenario runs an exported function', () => {
    const { options, functions } = load('ramping.js');

    expect(options.scenarios.ramp?.executor).to.equal('ramping-vus');
    expect(options.scenarios.ramp?.stages?.map((s) => s.target)).to.deep.equal([50, 100]);
    expect(options.thresholds.http_req_failed).to.deep.equal(['rate<0.01']);
    expect(options.thresholds['http_req_duration{scenario:ramp}']).to.deep.equal([
      'p(95)<49',
      'p(99)<89',
    ]);
    expect(options.thresholds.settled).to.deep.equal(['rate==1']);
    for (const s of Object.values(options.scenarios)) expect(functions).to.include(s.exec);
  });

  it('when a setting is given with -e, then the script uses it', () => {
    const { options } = load('constant-rate.js', { RATE: '500', DURATION: '10s', COUPONS: '20' });

    expect(options.scenarios.accept).to.include({ rate: 500, duration: '10s' });
    expect(options.thresholds.coupon_issued_count).to.deep.equal(['value==20']);
  });
});
