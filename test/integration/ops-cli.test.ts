import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ADMIN_TOKEN, drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI as operators do, in its own process, against the given service. */
function ops(args: string[], env: Record<string, string>, viaNpm = false): Promise<Run> {
  const [command, argv] = viaNpm
    ? ['npm', ['run', '--silent', 'ops', '--', ...args]]
    : [process.execPath, ['--import', 'tsx', 'scripts/ops.ts', ...args]];
  return new Promise((resolve) => {
    execFile(
      command as string,
      argv as string[],
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('npm run ops: the operator command line against a running service', function () {
  // Each run starts a TypeScript process: seconds on a busy machine.
  this.timeout(120_000);
  let h: Harness;
  let env: Record<string, string>;

  before(async () => {
    h = await startHarness();
    env = { OPS_URL: h.baseUrl, ADMIN_TOKEN };
  });
  after(async () => {
    await h.cleanup();
  });

  const pausedAt = async (couponId: number) =>
    (
      await h.container.pool.query<{ paused_at: Date | null }>(
        'SELECT paused_at FROM coupons WHERE id = $1',
        [couponId],
      )
    ).rows[0]?.paused_at ?? null;

  it('when an operator lists, shows, pauses, resumes, opens and closes events, then each command changes PostgreSQL and prints the result', async () => {
    const openId = await createCoupon(h.baseUrl, { name: 'CLI open', totalQuantity: 5 });
    const laterId = await createCoupon(h.baseUrl, {
      name: 'CLI later',
      totalQuantity: 5,
      startsAt: new Date(Date.now() + 3_600_000).toISOString(),
    });

    const listed = await ops(['list'], env, true);
    expect(listed.code, listed.stderr).to.equal(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^id\s+name\s+status\s+totalQuantity/);
    expect(lines[1]).to.match(new RegExp(`^${laterId}\\s+CLI later\\s+SCHEDULED`));
    expect(lines[2]).to.match(new RegExp(`^${openId}\\s+CLI open\\s+OPEN`));

    const paused = await ops(['pause', String(openId)], env);
    expect(paused.code, paused.stderr).to.equal(0);
    expect(paused.stdout).to.match(/status\s+PAUSED/);
    expect(await pausedAt(openId)).to.be.instanceOf(Date);

    const onlyPaused = await ops(['list', '--status', 'paused', '--json'], env);
    expect(
      (JSON.parse(onlyPaused.stdout) as { items: { id: number }[] }).items.map((c) => c.id),
    ).to.deep.equal([openId]);

    const resumed = await ops(['resume', String(openId), '--json'], env);
    expect(JSON.parse(resumed.stdout)).to.include({ id: openId, status: 'OPEN' });
    expect(await pausedAt(openId)).to.equal(null);

    const opened = await ops(['open', String(laterId)], env);
    expect(opened.code, opened.stderr).to.equal(0);
    expect(opened.stdout).to.match(/status\s+OPEN/);

    const shown = await ops(['show', String(laterId), '--json'], env);
    expect(JSON.parse(shown.stdout)).to.include({ id: laterId, status: 'OPEN' });

    const closed = await ops(['close', String(laterId)], env);
    expect(closed.stdout).to.match(/status\s+CLOSED/);
    const closedAt = await h.container.pool.query('SELECT closed_at FROM coupons WHERE id = $1', [
      laterId,
    ]);
    expect(closedAt.rows[0]?.closed_at).to.be.instanceOf(Date);
  });

  it('when an operator asks for stats and creates and edits an event, then the figures and the new record come back', async () => {
    const created = await ops(['create', '--name', 'CLI made', '--total', '3', '--json'], env);
    expect(created.code, created.stderr).to.equal(0);
    const couponId = (JSON.parse(created.stdout) as { id: number }).id;
    for (const u of ['s1', 's2']) await requestIssue(h.baseUrl, couponId, u);
    await drainAll(h.container);
    await requestIssue(h.baseUrl, couponId, 's3');

    const stats = await ops(['stats', String(couponId), '--json'], env);
    const human = await ops(['stats', String(couponId)], env);
    const edited = await ops(
      ['update', String(couponId), '--name', 'CLI renamed', '--total', '4'],
      env,
    );

    expect(JSON.parse(stats.stdout)).to.deep.include({
      issued: 2,
      queued: 1,
      remaining: 1,
      rates: { windowSeconds: 60, accepted: 3, issued: 2 },
    });
    expect(human.stdout).to.match(/queued\s+1/);
    expect(human.stdout).to.match(/rates:\n\s+windowSeconds\s+60/);
    expect(edited.code, edited.stderr).to.equal(0);
    const row = await h.container.pool.query(
      'SELECT name, total_quantity FROM coupons WHERE id = $1',
      [couponId],
    );
    expect(row.rows[0]).to.deep.equal({ name: 'CLI renamed', total_quantity: 4 });
  });

  it('when the service refuses a command, then exit code 1 with the problem title and detail, and nothing changes', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'CLI refused', totalQuantity: 5 });
    for (const u of ['r1', 'r2']) await requestIssue(h.baseUrl, couponId, u);
    await drainAll(h.container);

    const shrink = await ops(['update', String(couponId), '--total', '1'], env);
    const missing = await ops(['pause', '999999'], env);
    const wrongToken = await ops(['list'], { ...env, ADMIN_TOKEN: 'not-the-token-at-all' });

    expect(shrink.code).to.equal(1);
    expect(shrink.stderr).to.contain('The quantity cannot go below what is issued');
    expect(shrink.stderr).to.contain('QUANTITY_BELOW_ISSUED');
    expect(shrink.stderr).to.contain('below 2');
    expect(shrink.stderr).to.contain('totalQuantity: must be at least 2');
    const total = await h.container.pool.query('SELECT total_quantity FROM coupons WHERE id = $1', [
      couponId,
    ]);
    expect(total.rows[0]?.total_quantity).to.equal(5);
    expect([missing.code, missing.stderr]).to.satisfy(
      ([code, text]: [number, string]) => code === 1 && text.includes('COUPON_NOT_FOUND'),
    );
    expect(wrongToken.code).to.equal(1);
    expect(wrongToken.stderr).to.contain('Authentication required (UNAUTHORIZED)');
  });

  it('when the service cannot be reached or the arguments are wrong, then exit code 1 with a message saying so', async () => {
    const unreachable = await ops(['list'], { ...env, OPS_URL: 'http://127.0.0.1:9' });
    const badId = await ops(['pause', 'abc'], env);
    const unknown = await ops(['frobnicate'], env);

    expect(unreachable.code).to.equal(1);
    expect(unreachable.stderr).to.contain('cannot reach the service at OPS_URL=http://127.0.0.1:9');
    expect(badId.code).to.equal(1);
    expect(badId.stderr).to.contain('must be a coupon id');
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.contain("unknown command 'frobnicate'");
  });
});
