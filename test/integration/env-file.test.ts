import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ADMIN_TOKEN, startHarness, type Harness } from '../support/harness.js';
import { http } from '../support/http.js';
import { ServiceProcess } from '../support/processes.js';
import { reaper } from '../support/reaper.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Resolved here: the processes run in a folder with no node_modules of its own.
const TSX = import.meta.resolve('tsx');

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A folder holding only a .env with these lines. */
function folderWithEnvFile(lines: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-env-'));
  reaper.trackFolder(dir);
  const text = Object.entries(lines)
    .map(([name, value]) => `${name}=${value}`)
    .join('\n');
  writeFileSync(join(dir, '.env'), `# settings of this checkout\n${text}\n`);
  return dir;
}

function spawnIn(cwd: string, script: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', TSX, join(REPO_ROOT, script)], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reaper.track(child);
  return child;
}

describe('settings from a .env file in the working directory', function () {
  this.timeout(60_000);
  let h: Harness;
  let service: ServiceProcess | undefined;
  const migratedDatabase = `coupons_test_envfile_${randomBytes(4).toString('hex')}`;

  before(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await service?.kill();
    service = undefined;
  });
  after(async () => {
    const admin = new pg.Client({
      connectionString: 'postgres://postgres@127.0.0.1:5432/postgres',
    });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${migratedDatabase}" WITH (FORCE)`);
    await admin.end();
    await h.cleanup();
  });

  /** The settings of the harness's deployment, as .env lines. */
  const deploymentLines = () => ({
    NODE_ENV: 'test',
    DATABASE_URL: h.databaseUrl,
    REDIS_KEY_PREFIX: h.prefix,
    ADMIN_TOKEN,
    ROLE: 'api',
    API_PROCESSES: '1',
  });

  it('when .env sets PORT and the environment does not, then the service listens on the file’s port', async () => {
    const port = await freePort();
    const dir = folderWithEnvFile({ ...deploymentLines(), PORT: String(port) });

    service = new ServiceProcess('env-file', 'api', spawnIn(dir, 'src/main.ts'));
    await service.ready().catch((err: Error) => {
      throw new Error(`${err.message}\n${service?.dump()}`);
    });

    expect(service.port).to.equal(port);
    const health = await http(`http://127.0.0.1:${port}`, 'GET', '/health');
    expect(health.status).to.equal(200);
  });

  it('when .env and the environment both set PORT, then the environment wins', async () => {
    const [filePort, envPort] = [await freePort(), await freePort()];
    const dir = folderWithEnvFile({ ...deploymentLines(), PORT: String(filePort) });

    service = new ServiceProcess(
      'env-wins',
      'api',
      spawnIn(dir, 'src/main.ts', { PORT: String(envPort) }),
    );
    await service.ready().catch((err: Error) => {
      throw new Error(`${err.message}\n${service?.dump()}`);
    });

    expect(service.port).to.equal(envPort);
  });

  it('when .env sets DATABASE_URL, then npm run db:migrate migrates that database', async () => {
    const url = new URL(h.databaseUrl);
    url.pathname = `/${migratedDatabase}`;
    const dir = folderWithEnvFile({ DATABASE_URL: url.toString() });

    const child = spawnIn(dir, 'scripts/migrate.ts');
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

    expect(code, output).to.equal(0);
    expect(output).to.contain(`migrations applied to`);
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations',
      );
      expect(rows[0]?.n).to.be.greaterThan(0);
    } finally {
      await db.end();
    }
  });
});
