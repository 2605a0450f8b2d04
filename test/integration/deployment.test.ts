import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { ADMIN_TOKEN, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http } from '../support/http.js';
import { ServiceProcess } from '../support/processes.js';
import { reaper } from '../support/reaper.js';
import { bearer, JWT_SECRET, userToken } from '../support/tokens.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

/** What `npm run build` reads: a copy of these is a checkout the tests may build and touch. */
const BUILD_INPUTS = [
  'src',
  'scripts',
  'migrations',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
  'package-lock.json',
];
/** What a deployment holds: the build, the migrations it applies, and how to install and start it. */
const DEPLOYMENT_FILES = [
  'dist',
  'migrations',
  'package.json',
  'package-lock.json',
  'scripts/start.mjs',
  'scripts/build.mjs',
];

/** Modification time of every file under a folder, by relative path. */
function mtimes(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else out[relative(root, path)] = statSync(path).mtimeMs;
    }
  };
  visit(root);
  return out;
}

interface Exit {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command to its end with only the given environment (and PATH), collecting its output. */
function runToExit(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
  timeoutMs = 40_000,
): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reaper.track(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${output}`),
      );
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      reaper.forget(child);
      resolve({ code, output });
    });
  });
}

async function dropDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = target.pathname.slice(1);
  target.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: target.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Settings that make the service exit at once (after start-up has begun), in every mode. */
const INVALID_SETTINGS = { ROLE: 'both' };

describe('the built service (npm run build, npm start, a deployment of dist/)', function () {
  this.timeout(60_000);
  let h: Harness;
  /** A checkout that was built once. */
  let checkout: string;
  /** dist/, migrations/ and package files only, with production dependencies installed. */
  let deployment: string;
  const serviceDatabaseUrl = (() => {
    const url = new URL('postgres://postgres@127.0.0.1:5432/');
    url.pathname = `/coupons_test_deploy_${randomBytes(4).toString('hex')}`;
    return url.toString();
  })();
  let service: ServiceProcess | undefined;

  before(async function () {
    this.timeout(120_000);
    h = await startHarness();
    checkout = mkdtempSync(join(tmpdir(), 'cfs-checkout-'));
    reaper.trackFolder(checkout);
    for (const path of BUILD_INPUTS) {
      cpSync(join(REPO_ROOT, path), join(checkout, path), { recursive: true });
    }
    symlinkSync(realpathSync(join(REPO_ROOT, 'node_modules')), join(checkout, 'node_modules'));
    await run(process.execPath, ['scripts/build.mjs'], { cwd: checkout });

    deployment = mkdtempSync(join(tmpdir(), 'cfs-deployment-'));
    reaper.trackFolder(deployment);
    for (const path of DEPLOYMENT_FILES) {
      mkdirSync(dirname(join(deployment, path)), { recursive: true });
      cpSync(join(checkout, path), join(deployment, path), { recursive: true });
    }
    await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: deployment,
      env: { ...process.env, NODE_ENV: 'production' },
    });
  });

  after(async () => {
    await service?.kill();
    await dropDatabase(serviceDatabaseUrl).catch(() => undefined);
    await h?.cleanup();
  });

  it('when dist/ runs with production dependencies only, then it migrates a new database from migrations/, serves /health and decides an issue request in PostgreSQL', async () => {
    // Nothing that only development installs: the service cannot lean on tsx or on src/.
    expect(existsSync(join(deployment, 'node_modules', 'typescript'))).to.equal(false);
    expect(existsSync(join(deployment, 'node_modules', 'tsx'))).to.equal(false);
    expect(existsSync(join(deployment, 'node_modules', 'drizzle-kit'))).to.equal(false);
    expect(existsSync(join(deployment, 'src'))).to.equal(false);

    const child = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: deployment,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        ADMIN_TOKEN,
        // Production refuses to start without a way to verify users' tokens.
        JWT_SECRET,
        DATABASE_URL: serviceDatabaseUrl,
        REDIS_KEY_PREFIX: h.prefix,
        REDIS_EVICTION_CHECK: 'warn',
        ROLE: 'all',
        API_PROCESSES: '1',
        PORT: '0',
        BATCH_INTERVAL_MS: '5',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reaper.track(child);
    service = new ServiceProcess('deployed', 'all', child);
    try {
      await service.ready();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${service.dump()}`);
    }
    const baseUrl = service.baseUrl;

    const health = await http(baseUrl, 'GET', '/health');
    expect(health.status, service.dump()).to.equal(200);
    // The dashboard's page and scripts come from dist/ and the production dependencies.
    for (const path of [
      '/dashboard',
      '/dashboard/assets/dashboard.js',
      '/dashboard/assets/dashboard.css',
      '/dashboard/assets/uPlot.iife.min.js',
      '/dashboard/assets/uPlot.min.css',
    ]) {
      const served = await http(baseUrl, 'GET', path);
      expect(served.status, path).to.equal(200);
      expect(String(served.body).length, path).to.be.greaterThan(100);
    }
    const couponId = await createCoupon(baseUrl, { name: 'Deployed', totalQuantity: 3 });
    const user = bearer(await userToken('deployed-user'));
    const accepted = await http<{ requestId: string }>(
      baseUrl,
      'POST',
      `/coupons/${couponId}/issue-requests`,
      { body: {}, headers: user },
    );
    expect(accepted.status).to.equal(202);
    const requestId = accepted.body.requestId;

    const db = new pg.Client({ connectionString: serviceDatabaseUrl });
    await db.connect();
    try {
      const deadline = Date.now() + 30_000;
      let rows: { status: string; user_id: string }[] = [];
      while (rows.length === 0) {
        if (Date.now() > deadline) throw new Error(`not decided in time\n${service.dump()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        ({ rows } = await db.query(
          'SELECT status, user_id FROM issue_requests WHERE request_id = $1',
          [requestId],
        ));
      }
      expect(rows).to.deep.equal([{ status: 'ISSUED', user_id: 'deployed-user' }]);
      const issued = await db.query(
        'SELECT count(*)::int AS n FROM issued_coupons WHERE coupon_id = $1',
        [couponId],
      );
      expect(issued.rows[0]).to.deep.equal({ n: 1 });
      // Every migration in migrations/ was applied by the service itself.
      const journal = readdirSync(join(deployment, 'migrations')).filter((f) => f.endsWith('.sql'));
      const applied = await db.query('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
      expect(applied.rows[0]).to.deep.equal({ n: journal.length });
    } finally {
      await db.end();
    }
    const polled = await http(baseUrl, 'GET', `/issue-requests/${requestId}`, { headers: user });
    expect(polled.body.status).to.equal('ISSUED');
  });

  it('when a deployment without src/ runs npm start, then it starts dist/ as it is; when it holds sources newer than the build, then it exits 1 saying what to run', async () => {
    const before = mtimes(join(deployment, 'dist'));

    const started = await runToExit('npm', ['start'], deployment, INVALID_SETTINGS);
    // The service itself ran (and refused the settings): no build was needed or tried.
    expect(started.code, started.output).to.equal(1);
    expect(started.output).to.contain('ROLE="both"');
    expect(started.output).not.to.contain('building');

    mkdirSync(join(deployment, 'src'));
    writeFileSync(join(deployment, 'src', 'main.ts'), '// edited after the build\n');
    const refused = await runToExit('npm', ['start'], deployment, INVALID_SETTINGS);
    expect(refused.code, refused.output).to.equal(1);
    expect(refused.output).to.contain('TypeScript is not installed');
    expect(refused.output).to.contain('npm run build');
    expect(refused.output).not.to.contain('ROLE="both"');
    expect(mtimes(join(deployment, 'dist'))).to.deep.equal(before);
  });

  it('when dist/ is up to date, then npm start runs it without building; when a source is newer, then it builds first', async () => {
    const dist = join(checkout, 'dist');
    const before = mtimes(dist);
    expect(Object.keys(before)).to.include.members([
      '.build-stamp',
      'src/main.js',
      'src/infra/redis/lua/accept-7.lua',
    ]);

    const fresh = await runToExit('npm', ['start'], checkout, INVALID_SETTINGS);
    expect(fresh.code, fresh.output).to.equal(1);
    expect(fresh.output).to.contain('ROLE="both"');
    expect(fresh.output).not.to.contain('building');
    expect(mtimes(dist)).to.deep.equal(before);

    // An edit after the build (a second later than the stamp, whatever the clock's grain).
    const edited = new Date(statSync(join(dist, '.build-stamp')).mtimeMs + 1_000);
    utimesSync(join(checkout, 'src', 'infra', 'config.ts'), edited, edited);
    const stale = await runToExit('npm', ['start'], checkout, INVALID_SETTINGS);
    expect(stale.code, stale.output).to.equal(1);
    expect(stale.output).to.contain('building: the sources changed since the last build');
    expect(stale.output).to.contain('ROLE="both"');
    const after = mtimes(dist);
    expect(after['src/main.js']).to.be.greaterThan(before['src/main.js'] as number);
    expect(after['.build-stamp']).to.be.greaterThan(before['.build-stamp'] as number);
  });
});
