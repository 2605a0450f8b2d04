import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../support/eventually.js';
import { reaper } from '../support/reaper.js';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';

const PROMETHEUS = '/usr/bin/prometheus';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An instant PromQL query through Prometheus's HTTP API: the single value, or undefined. */
async function query(baseUrl: string, promql: string): Promise<number | undefined> {
  const res = await fetch(`${baseUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as {
    status: string;
    data?: { result: { value: [number, string] }[] };
  };
  if (body.status !== 'success') throw new Error(`query ${promql}: ${JSON.stringify(body)}`);
  const [first] = body.data?.result ?? [];
  return first ? Number(first.value[1]) : undefined;
}

describe('a real Prometheus scraping the service', function () {
  this.timeout(90_000);
  let h: Harness;
  let prometheus: ChildProcess | undefined;
  let folder: string | undefined;
  let output = '';

  before(async function () {
    if (!existsSync(PROMETHEUS)) {
      throw new Error(
        `${PROMETHEUS} is missing: install Debian's package \`prometheus\` (apt-get install prometheus)`,
      );
    }
    h = await startHarness();
    folder = mkdtempSync(join(tmpdir(), 'coupon-prometheus-'));
    reaper.trackFolder(folder);
    const target = new URL(h.baseUrl).host;
    writeFileSync(
      join(folder, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: coupon-test',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    prometheus?.kill('SIGKILL');
    await h?.cleanup();
    if (folder) {
      rmSync(folder, { recursive: true, force: true });
      reaper.forgetFolder(folder);
    }
  });

  it('when requests are accepted and refused, then PromQL over what Prometheus scraped gives the counts sent', async () => {
    const port = await freePort();
    const dir = folder as string;
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    reaper.track(prometheus);
    prometheus.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    prometheus.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const promUrl = `http://127.0.0.1:${port}`;
    // A wait that fails shows what Prometheus last said.
    const withLog = (err: Error) => {
      throw new Error(`${err.message}\n${output.split('\n').slice(-20).join('\n')}`, {
        cause: err.cause,
      });
    };
    await eventually('Prometheus to scrape the service', async () =>
      (await query(promUrl, 'up{job="coupon-test"}')) === 1 ? true : undefined,
    ).catch(withLog);

    const couponId = await createCoupon(h.baseUrl, { name: 'Scraped', totalQuantity: 100 });
    for (let i = 0; i < 7; i += 1) {
      expect((await requestIssue(h.baseUrl, couponId, `p${i}`)).status).to.equal(202);
    }
    for (let i = 0; i < 3; i += 1) {
      expect((await requestIssue(h.baseUrl, couponId, 'not a user id')).status).to.equal(400);
    }

    const accepted = 'sum(coupon_issue_requests_total{outcome="accepted"})';
    await eventually('Prometheus to see the 7 accepted requests', async () =>
      (await query(promUrl, accepted)) === 7 ? true : undefined,
    ).catch(withLog);
    expect(await query(promUrl, 'sum(coupon_issue_requests_total{outcome="invalid"})')).to.equal(3);
    expect(
      await query(
        promUrl,
        'sum(http_request_duration_seconds_count{route="/coupons/:couponId/issue-requests",status="202"})',
      ),
    ).to.equal(7);
    expect(await query(promUrl, 'min(coupon_redis_up)')).to.equal(1);
  });
});
